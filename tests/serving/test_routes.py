"""The API's routes besides /predict: health, the served model, loading another with the token."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mlops_cli.registry.models import list_versions
from serving.app import create_app
from tests.conftest import LISTING, TOKEN, serving_settings
from tests.serving.conftest import champion


def test_health_answers_like_ready(client: TestClient, settings) -> None:
    assert client.get("/health").json() == client.get("/health/ready").json()
    assert client.get("/health").json()["version"] == champion(settings)


def test_model_info(client: TestClient, settings) -> None:
    info = client.get("/model").json()
    assert info["name"] == "house_prices" and info["version"] == champion(settings)
    assert info["alias"] == "champion" and info["run_id"] and info["loaded_at"]
    assert info["metrics"]["rmse"] > 0 and info["path"] == "fast" and info["fallback_reason"] is None


def test_load_model_needs_the_token(client: TestClient) -> None:
    assert client.post("/load_model").status_code == 401
    assert client.post("/load_model", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_load_a_version_then_back_to_the_alias(client: TestClient, settings) -> None:
    current = champion(settings)
    other = next(v["version"] for v in list_versions(settings) if v["version"] != current)
    response = client.post("/load_model", json={"version": other}, headers=TOKEN)
    assert response.status_code == 200, response.text
    assert response.json()["loaded"]["version"] == other and response.json()["previous_version"] == current
    assert client.post("/predict", json=LISTING).json()["model"]["version"] == other
    back = client.post("/load_model", headers=TOKEN)
    assert back.json()["loaded"]["version"] == current and back.json()["loaded"]["alias"] == "champion"


def test_a_failed_load_keeps_the_old_model(client: TestClient, settings, caplog: pytest.LogCaptureFixture) -> None:
    current = champion(settings)
    for body in ({"version": 999}, {"alias": "nope"}):
        response = client.post("/load_model", json=body, headers=TOKEN)
        assert response.status_code == 404 and f"still serving version {current}" in response.json()["detail"]
    refusals = [r.getMessage() for r in caplog.records if r.levelname == "ERROR" and r.name == "mlops.serving"]
    assert any(m.startswith("could not load house_prices@999") and f"still serving v{current}" in m for m in refusals)
    assert client.post("/predict", json=LISTING).json()["model"]["version"] == current
    both = client.post("/load_model", json={"version": 1, "alias": "champion"}, headers=TOKEN)
    assert both.status_code == 422


def test_not_ready_until_a_model_is_loaded(settings) -> None:
    app = create_app(settings, load_on_start=False)
    with TestClient(app) as client:
        assert client.get("/health/live").status_code == 200
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and "no model loaded yet" in ready.json()["detail"]
        assert client.post("/predict", json=LISTING).status_code == 503
        client.post("/load_model", headers=TOKEN)
        assert client.get("/health/ready").json()["status"] == "ready"


def test_ready_without_a_champion_only_when_asked_and_only_when_none_exists(home: Path) -> None:
    """On Kubernetes a first install has no model yet: the pods are Ready (so Argo CD's waves go
    on) while the registry answers that no champion exists; an unreachable registry is not that."""
    empty = serving_settings(home, api_ready_without_champion=True)
    for settings, expected in ((empty, 200), (serving_settings(home), 503)):
        with TestClient(create_app(settings)) as client:
            deadline = time.monotonic() + 60
            while "no alias" not in client.get("/health/ready").text and time.monotonic() < deadline:
                time.sleep(0.1)
            ready = client.get("/health/ready")
            assert ready.status_code == expected and "no alias 'champion'" in ready.text, ready.text
            assert client.post("/predict", json=LISTING).status_code == 503
    down = serving_settings(home, api_ready_without_champion=True, mlflow_tracking_uri="http://127.0.0.1:9")
    with TestClient(create_app(down)) as client:
        time.sleep(1)
        assert client.get("/health/ready").status_code == 503


@pytest.mark.parametrize("version", [0, -1, 2**31, 2**63, 10**30])
def test_an_impossible_version_to_load_is_422_not_an_outage(client: TestClient, version: int) -> None:
    answer = client.post("/load_model", json={"version": version}, headers=TOKEN)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][-1] == "version"


def test_a_version_and_an_alias_together_is_a_422_shaped_like_every_other(client: TestClient) -> None:
    answer = client.post("/load_model", json={"version": 1, "alias": "champion"}, headers=TOKEN)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert isinstance(detail, list) and "not both" in detail[0]["msg"]
