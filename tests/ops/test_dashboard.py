"""The Grafana dashboard: valid JSON whose every panel asks Prometheus something, imported into Grafana (a stand-in)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops_cli.ops.dashboard import DASHBOARD_UID, DATASOURCE_UID, LOAD_TEST_WINDOW, PANELS, dashboard
from tests.conftest import QuietHandler, run_mlops, serve_in_thread


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
