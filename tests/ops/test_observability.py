"""Prometheus scraping the real API under real Locust load; the dashboard; its import."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from mlops_cli.ops.dashboard import LOAD_TEST_WINDOW, PANELS
from mlops_cli.ops.observability import prometheus_config
from tests.conftest import run_mlops


def test_scrape_config_names_every_target() -> None:
    import yaml

    targets = {"mlops-api": "127.0.0.1:8000", "mlops-data-api": "127.0.0.1:8080"}
    config = yaml.safe_load(prometheus_config(targets))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(targets)
    for name, target in targets.items():
        assert jobs[name]["static_configs"] == [{"targets": [target]}], name
    assert config["global"]["scrape_interval"] == "5s"


@pytest.mark.slow
def test_every_panel_query_returns_data_after_real_traffic(
    home: Path, stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_API_DRIFT_INTERVAL", "2")  # the served-drift panels within the test's wait
    assert run_mlops("up").returncode == 0
    data_api = f"http://127.0.0.1:{stack_env['MLOPS_DATA_API_PORT']}"
    trained = run_mlops("train", "--all", "--source", data_api)
    assert trained.returncode == 0, trained.stderr

    load = run_mlops(
        "loadtest",
        "--duration",
        "8s",
        "--users",
        "4",
        "--spawn-rate",
        "4",
        "--json",
        "--html",
        str(home / "report.html"),
    )
    assert load.returncode == 0, load.stderr
    result = json.loads(load.stdout)
    assert set(result) >= {"host", "users", "duration_s", "endpoints", "total", "error_rate", "violations"}
    assert result["total"]["requests"] > 0 and result["error_rate"] == 0 and result["violations"] == []
    assert {e["name"] for e in result["endpoints"]} == {"/predict (1 listing)", "/predict (8 listings)"}
    # Locust rounds times under 100 ms to whole ms: a sub-millisecond median reads 0
    assert all(e["requests"] > 0 and e["p99_ms"] >= e["p95_ms"] >= e["p50_ms"] >= 0 for e in result["endpoints"])
    assert any(e["p99_ms"] > 0 for e in result["endpoints"]), "percentiles were read at all"
    assert (home / "report.html").stat().st_size > 1000
    # every request of the load test left its listings in inference_events (the stack's API writes
    # them to the data DB the loop trains from, while it trains)
    time.sleep(1.5)  # the writer's last flush
    events = json.loads(run_mlops("events", "list", "--json", "--limit", "100000").stdout)
    assert len({e["request_id"] for e in events if e["status"] == 200}) >= result["total"]["requests"]
    assert {e["item"] for e in events} >= set(range(8)), "an 8-listing request leaves 8 rows"

    prometheus = f"http://127.0.0.1:{stack_env['MLOPS_PROMETHEUS_PORT']}"
    for panel in PANELS:
        for legend, expr in panel.queries.items():
            deadline = time.monotonic() + 40
            while True:
                answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}).json()
                assert answer["status"] == "success", (panel.title, answer)
                if answer["data"]["result"] or panel.data_when:  # valid PromQL; data only then
                    break
                assert time.monotonic() < deadline, f"panel {panel.title!r} ({legend}) has no data: {expr}"
                time.sleep(1)

    window = httpx.get(f"{prometheus}/api/v1/query", params={"query": LOAD_TEST_WINDOW}).json()
    assert window["status"] == "success", window  # the load test's annotation: valid PromQL

    # long enough that requests complete on a loaded 2-core machine (3 s sometimes saw none)
    impossible = run_mlops("loadtest", "--duration", "8s", "--users", "2", "--max-p95-ms", "0.001")
    assert impossible.returncode == 1
    assert (
        "error: load test failed: p95 latency" in impossible.stderr
        and "exceeds --max-p95-ms 0.001" in impossible.stderr
    )
