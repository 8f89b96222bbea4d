"""Prometheus scraping the real API under real Locust load; the dashboard; its import."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_cli.ops.dashboard import DASHBOARD_UID, DATASOURCE_UID, LOAD_TEST_WINDOW, PANELS, dashboard
from mlops_cli.ops.observability import prometheus_config
from tests.conftest import QuietHandler, run_mlops, serve_in_thread


def test_dashboard_is_valid_grafana_json() -> None:
    model = json.loads(json.dumps(dashboard()))
    assert model["uid"] == DASHBOARD_UID and model["schemaVersion"] >= 36 and model["refresh"] == "10s"
    assert len(model["panels"]) == len(PANELS) >= 6
    assert len({p["id"] for p in model["panels"]}) == len(model["panels"])
    for panel in model["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
        assert panel["type"] in ("timeseries", "stat")
        assert 0 <= panel["gridPos"]["x"] and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["targets"] and all(
            t["expr"] and t["datasource"]["uid"] == DATASOURCE_UID for t in panel["targets"]
        )
    titles = " ".join(p["title"].lower() for p in model["panels"])
    for topic in (
        "requests",
        "error",
        "latency",
        "predictions",
        "version",
        "loads",
        "inference events",
        "drift",
        "never seen",
        "cpu",
        "memory",
        "restarts",
    ):
        assert topic in titles
    (annotation,) = model["annotations"]["list"]
    assert annotation["expr"] == LOAD_TEST_WINDOW and 'container="locust"' in annotation["expr"]


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


def test_loadtest_against_nothing_is_a_clear_error(home: Path) -> None:
    from mlops_cli.ops.netutil import free_port

    result = run_mlops("loadtest", "--host", f"http://127.0.0.1:{free_port()}", "--duration", "2s")
    assert result.returncode == 1 and "is not reachable" in result.stderr
    assert result.stderr.startswith("error:"), "no stray blank line before the message"
    bad = run_mlops("loadtest", "--duration", "soon")
    assert bad.returncode == 2 and "duration like 30s" in bad.stderr


class GrafanaStandIn:
    """A stand-in for Grafana's HTTP API (no Grafana server can be installed here): it records
    every request and answers like Grafana for datasources, folders and dashboards."""

    def __init__(self, token: str = "secret-token") -> None:
        self.requests: list[tuple[str, str, dict[str, Any] | None, str | None]] = []
        self.datasources: dict[str, dict] = {}
        self.folders: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        stand_in = self

        class Handler(QuietHandler):
            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                auth = self.headers.get("Authorization")
                stand_in.requests.append((method, self.path, body, auth))
                if auth != f"Bearer {token}":
                    return self.answer(401, {"message": "Unauthorized"})
                parts = self.path.strip("/").split("/")
                if method == "GET" and parts[:3] == ["api", "datasources", "uid"]:
                    found = stand_in.datasources.get(parts[3])
                    return self.answer(200, found) if found else self.answer(404, {"message": "not found"})
                if method == "POST" and parts == ["api", "datasources"]:
                    stand_in.datasources[body["uid"]] = body
                    return self.answer(200, {"message": "Datasource added", "id": 1})
                if method == "GET" and parts[:2] == ["api", "folders"]:
                    found = stand_in.folders.get(parts[2])
                    return self.answer(200, found) if found else self.answer(404, {"message": "not found"})
                if method == "POST" and parts == ["api", "folders"]:
                    stand_in.folders[body["uid"]] = body
                    return self.answer(200, body)
                if method == "POST" and parts == ["api", "dashboards", "db"]:
                    uid = body["dashboard"]["uid"]
                    if uid in stand_in.dashboards and not body.get("overwrite"):
                        return self.answer(412, {"message": "exists"})
                    version = stand_in.dashboards.get(uid, {}).get("version", 0) + 1
                    stand_in.dashboards[uid] = {**body, "version": version}
                    return self.answer(200, {"status": "success", "uid": uid, "url": f"/d/{uid}/x", "version": version})
                return self.answer(404, {"message": "unknown endpoint"})

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.server, self.url = serve_in_thread(Handler)


@pytest.fixture
def grafana() -> GrafanaStandIn:
    stand_in = GrafanaStandIn()
    yield stand_in
    stand_in.server.shutdown()


def test_dashboard_import_creates_what_is_missing_and_is_idempotent(grafana: GrafanaStandIn, home: Path) -> None:
    args = [
        "dashboard",
        "import",
        "--grafana-url",
        grafana.url,
        "--prometheus-url",
        "http://prometheus:9090",
        "--folder",
        "House Prices",
        "--json",
    ]
    first = run_mlops(*args, env={"MLOPS_GRAFANA_TOKEN": "secret-token"})
    assert first.returncode == 0, first.stderr
    created = json.loads(first.stdout)
    assert (created["datasource"], created["folder"], created["dashboard"]) == ("created", "created", DASHBOARD_UID)
    source = grafana.datasources[DATASOURCE_UID]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090" and source["isDefault"]
    saved = grafana.dashboards[DASHBOARD_UID]
    assert saved["overwrite"] is True and saved["folderUid"] in grafana.folders
    assert saved["dashboard"]["panels"] == dashboard()["panels"]

    second = run_mlops(*args, env={"MLOPS_GRAFANA_TOKEN": "secret-token"})
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert (again["datasource"], again["folder"], again["version"]) == ("exists", "exists", 2)
    assert len(grafana.datasources) == 1 and len(grafana.folders) == 1 and len(grafana.dashboards) == 1
    assert all(auth == "Bearer secret-token" for *_, auth in grafana.requests)


def test_dashboard_import_with_a_wrong_token_or_no_grafana(grafana: GrafanaStandIn, home: Path) -> None:
    refused = run_mlops("dashboard", "import", "--grafana-url", grafana.url, "--token", "wrong")
    assert refused.returncode == 1 and "Grafana refused to look up the datasource: HTTP 401" in refused.stderr
    from mlops_cli.ops.netutil import free_port

    gone = run_mlops("dashboard", "import", "--grafana-url", f"http://127.0.0.1:{free_port()}", "--token", "t")
    assert gone.returncode == 1 and "is not reachable" in gone.stderr
