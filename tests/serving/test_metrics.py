"""The API's Prometheus metrics: requests, predictions, reloads, the champion's error on new data."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from serving.app import create_app
from serving.model_server import wait_until_loaded
from tests.conftest import LISTING, serving_settings
from tests.serving.conftest import champion


def test_metrics_count_requests_predictions_and_reloads(client: TestClient, settings) -> None:
    client.post("/predict", json=[LISTING, LISTING])
    client.post("/predict", json={})
    client.get("/nowhere")
    text = client.get("/metrics").text
    assert 'mlops_api_requests_total{method="POST",path="/predict",status="200"} 1.0' in text
    assert 'mlops_api_requests_total{method="POST",path="/predict",status="422"} 1.0' in text
    assert 'mlops_api_requests_total{method="GET",path="other",status="404"} 1.0' in text
    assert "mlops_api_predictions_total 2.0" in text
    assert 'mlops_api_request_duration_seconds_bucket{le="+Inf",method="POST",path="/predict"} 2.0' in text
    version = champion(settings)
    assert f'mlops_api_model_info{{alias="champion",name="house_prices",path="fast",version="{version}"}} 1.0' in text
    assert f'mlops_api_model_version{{name="house_prices"}} {float(version)}' in text
    assert 'mlops_api_model_reloads_total{result="success"} 1.0' in text


def test_the_champions_error_on_the_newest_batch_is_a_prometheus_gauge(registry_home: Path) -> None:
    """What the loop measured of the champion on a batch's rows (tags of that version) is exported
    by the API's alias watcher, for Grafana's "how is production doing" panel."""
    from mlops_cli.registry.client import configure, tag_batch_check

    settings = serving_settings(registry_home, api_watch_interval=0.2)
    version = champion(settings)
    tag_batch_check(configure(settings), settings, version, 7, {"mae": 61_234.5, "rmse": 99_000.0, "mae_change": 0.27})
    app = create_app(settings)
    with TestClient(app) as client:
        wait_until_loaded(app.state.holder, 60)
        deadline = time.monotonic() + 30
        while f'mlops_champion_batch_mae_change{{version="{version}"}} 0.27' not in client.get("/metrics").text:
            assert time.monotonic() < deadline, client.get("/metrics").text[-2000:]
            time.sleep(0.1)
        text = client.get("/metrics").text
    assert f'mlops_champion_batch_checked{{version="{version}"}} 7.0' in text
    assert f'mlops_champion_batch_mae{{version="{version}"}} 61234.5' in text
