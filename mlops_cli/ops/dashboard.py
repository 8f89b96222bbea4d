"""The Grafana dashboard of the inference API (built here, so every PromQL query is testable),
its provisioning files, and `mlops dashboard import` through Grafana's HTTP API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mlops_cli.errors import MlopsError
from mlops_cli.ops.k8s import NAMESPACE  # the manifests' namespace: cAdvisor's series are filtered by it

DATASOURCE_UID = "mlops-prometheus"
DASHBOARD_UID = "mlops-house-prices"
DASHBOARD_TITLE = "mlops — house prices API"
SCHEMA_VERSION = 39
REFRESH = "10s"
RATE = "[1m]"
API_CONTAINER = f'namespace="{NAMESPACE}",container="api"'


@dataclass(frozen=True)
class Panel:
    title: str
    kind: str  # timeseries | stat
    queries: dict[str, str]  # legend → PromQL
    unit: str = "short"
    width: int = 12
    # when a panel that may be empty has data ("on Kubernetes"); None: as soon as there is traffic
    data_when: str | None = None


def quantile(q: float) -> str:
    return (
        f"histogram_quantile({q}, sum by (le) "
        f'(rate(mlops_api_request_duration_seconds_bucket{{path="/predict"}}{RATE})))'
    )


PANELS = [
    Panel(
        "Requests per second by endpoint and status",
        "timeseries",
        {"{{path}} {{status}}": f"sum by (path, status) (rate(mlops_api_requests_total{RATE}))"},
        "reqps",
    ),
    Panel(
        "Error ratio",
        "timeseries",
        {
            "5xx": f'(sum(rate(mlops_api_requests_total{{status=~"5.."}}{RATE})) or vector(0))'
            f" / sum(rate(mlops_api_requests_total{RATE}))",
            "4xx": f'(sum(rate(mlops_api_requests_total{{status=~"4.."}}{RATE})) or vector(0))'
            f" / sum(rate(mlops_api_requests_total{RATE}))",
        },
        "percentunit",
    ),
    Panel("/predict latency", "timeseries", {"p50": quantile(0.5), "p95": quantile(0.95), "p99": quantile(0.99)}, "s"),
    Panel(
        "Predictions per second", "timeseries", {"predictions": f"sum(rate(mlops_api_predictions_total{RATE}))"}, "ops"
    ),
    Panel("Model version served", "stat", {"{{name}}": "max by (name) (mlops_api_model_version)"}, "none", 6),
    Panel(
        "Model loads (last 15 min)",
        "stat",
        {"{{result}}": "sum by (result) (increase(mlops_api_model_reloads_total[15m]))"},
        "short",
        6,
    ),
    Panel(
        "Data API batches served (last 15 min)",
        "stat",
        {"batches": "sum(increase(data_api_batches_served_total[15m]))"},
        "short",
        12,
    ),
    # one inference event per listing, written off the request's path: dropped (and counted)
    # when the queue is full or the data DB fails, never a failed request
    Panel(
        "Inference events written and dropped per second",
        "timeseries",
        {
            "written": f"sum(rate(mlops_api_events_written_total{RATE}))",
            "dropped: {{reason}}": f"sum by (reason) (rate(mlops_api_events_dropped_total{RATE}))",
        },
        "ops",
    ),
    Panel(
        "Inference events waiting for the writer",
        "timeseries",
        {"queued": "sum(mlops_api_events_queue_depth)"},
        "short",
    ),
    # served traffic against the served version's training rows (MLOPS_API_DRIFT_WINDOW minutes;
    # the retraining decision's statistics and threshold)
    Panel(
        "Served traffic drift against training (PSI; state: TVD)",
        "timeseries",
        {"{{feature}}": "max by (feature) (mlops_served_drift)"},
        "short",
    ),
    Panel(
        "Served listings with a value never seen in training",
        "timeseries",
        {"{{field}}": "max by (field) (mlops_served_unseen_share)"},
        "percentunit",
    ),
    Panel(
        "Predicted prices served (quantiles)",
        "timeseries",
        {"p{{quantile}}": "max by (quantile) (mlops_served_prediction)"},
        "currencyUSD",
    ),
    # the API pods' resources, from cAdvisor through Prometheus' Kubernetes discovery (the
    # kubernetes-cadvisor scrape job): no data outside a cluster
    Panel(
        "API pods: CPU (cores)",
        "timeseries",
        {"{{pod}}": f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{API_CONTAINER}}}{RATE}))"},
        "short",
        8,
        data_when="on Kubernetes",
    ),
    Panel(
        "API pods: memory (working set)",
        "timeseries",
        {"{{pod}}": f"sum by (pod) (container_memory_working_set_bytes{{{API_CONTAINER}}})"},
        "bytes",
        8,
        data_when="on Kubernetes",
    ),
    Panel(
        "API container restarts (last hour)",
        "timeseries",
        {"{{pod}}": f"sum by (pod) (changes(container_start_time_seconds{{{API_CONTAINER}}}[1h]))"},
        "short",
        8,
        data_when="on Kubernetes",
    ),
    # the loop's "how is production doing" series: the champion's MAE on the newest labelled batch
    # against its own test MAE (the degradation trigger's value), from the version's tags
    Panel(
        "Champion's MAE on the newest batch, against its test MAE",
        "timeseries",
        {"v{{version}}": "max by (version) (mlops_champion_batch_mae_change)"},
        "percentunit",
        data_when="once the champion has been checked on a batch it was not trained on",
    ),
]
# A load test's window, shaded on every panel: while the Locust Job's container runs (cAdvisor).
LOAD_TEST_WINDOW = (
    f'max(rate(container_cpu_usage_seconds_total{{namespace="{NAMESPACE}",container="locust"}}{RATE})) > 0'
)


def dashboard() -> dict[str, Any]:
    """The dashboard model: panels with the Prometheus datasource by uid, refreshed every 10 s."""
    datasource = {"type": "prometheus", "uid": DATASOURCE_UID}
    panels = []
    x = y = 0
    for number, panel in enumerate(PANELS, start=1):
        if x + panel.width > 24:
            x, y = 0, y + 8
        panels.append(
            {
                "id": number,
                "type": panel.kind,
                "title": panel.title,
                "datasource": datasource,
                "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {},
                "targets": [
                    {"refId": chr(ord("A") + i), "datasource": datasource, "expr": expr, "legendFormat": legend}
                    for i, (legend, expr) in enumerate(panel.queries.items())
                ],
            }
        )
        x += panel.width
    return {
        "uid": DASHBOARD_UID,
        "title": DASHBOARD_TITLE,
        "tags": ["mlops"],
        "timezone": "browser",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": REFRESH,
        "time": {"from": "now-30m", "to": "now"},
        "annotations": {
            "list": [
                {
                    "name": "Load test (Kubernetes)",
                    "datasource": datasource,
                    "enable": True,
                    "expr": LOAD_TEST_WINDOW,
                    "step": "15s",
                    "iconColor": "rgba(255, 96, 96, 1)",
                    "titleFormat": "Locust load test running",
                    "useValueForTime": False,
                }
            ]
        },
        "panels": panels,
    }


def datasource_provisioning(prometheus_url: str) -> str:
    """grafana/provisioning/datasources/*.yaml: Prometheus as the default datasource."""
    return (
        "apiVersion: 1\ndatasources:\n"
        f"  - name: Prometheus\n    uid: {DATASOURCE_UID}\n    type: prometheus\n    access: proxy\n"
        f"    url: {prometheus_url}\n    isDefault: true\n    editable: false\n"
    )


def dashboard_provider(path: str) -> str:
    """grafana/provisioning/dashboards/*.yaml: load dashboard JSON files from ``path``."""
    return (
        "apiVersion: 1\nproviders:\n  - name: mlops\n    orgId: 1\n    folder: mlops\n    type: file\n"
        "    disableDeletion: false\n    updateIntervalSeconds: 10\n    allowUiUpdates: true\n"
        f"    options:\n      path: {path}\n"
    )


def import_dashboard(
    grafana_url: str,
    prometheus_url: str,
    folder: str = "mlops",
    token: str | None = None,
    user: str | None = None,
    password: str | None = None,
    timeout: float = 15.0,
) -> dict[str, Any]:
    """Create the datasource if missing, the folder if missing, and import (overwrite) the dashboard."""
    import httpx

    headers = {"Accept": "application/json"}
    auth = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user:
        auth = (user, password or "")
    base = grafana_url.rstrip("/")
    result: dict[str, Any] = {"grafana": base}
    try:
        with httpx.Client(base_url=base, headers=headers, auth=auth, timeout=timeout) as client:
            found = client.get(f"/api/datasources/uid/{DATASOURCE_UID}")
            _check(found, "look up the datasource", allow=(404,))
            if found.status_code == 404:
                created = client.post(
                    "/api/datasources",
                    json={
                        "name": "Prometheus",
                        "uid": DATASOURCE_UID,
                        "type": "prometheus",
                        "access": "proxy",
                        "url": prometheus_url,
                        "isDefault": True,
                    },
                )
                _check(created, "create the datasource")
                result["datasource"] = "created"
            else:
                result["datasource"] = "exists"
            folder_uid = f"mlops-{folder.lower().replace(' ', '-')}"[:40]
            existing = client.get(f"/api/folders/{folder_uid}")
            _check(existing, "look up the folder", allow=(404,))
            if existing.status_code == 404:
                _check(client.post("/api/folders", json={"uid": folder_uid, "title": folder}), "create the folder")
                result["folder"] = "created"
            else:
                result["folder"] = "exists"
            saved = client.post(
                "/api/dashboards/db",
                json={
                    "dashboard": {**dashboard(), "id": None},
                    "folderUid": folder_uid,
                    "overwrite": True,
                    "message": "imported by mlops",
                },
            )
            _check(saved, "import the dashboard")
            body = saved.json()
            result.update(
                {"dashboard": DASHBOARD_UID, "url": base + body.get("url", ""), "version": body.get("version")}
            )
    except httpx.HTTPError as exc:
        raise MlopsError(
            f"Grafana at {base} is not reachable ({type(exc).__name__})", hint="check --grafana-url / MLOPS_GRAFANA_URL"
        ) from None
    return result


def _check(response: Any, what: str, allow: tuple[int, ...] = ()) -> None:
    if response.status_code < 400 or response.status_code in allow:
        return
    if response.status_code in (401, 403):
        raise MlopsError(
            f"Grafana refused to {what}: HTTP {response.status_code}",
            hint="give --token (MLOPS_GRAFANA_TOKEN) or --user/--password with Editor rights",
        )
    try:
        detail = response.json().get("message", response.text)
    except (ValueError, AttributeError):
        detail = response.text
    raise MlopsError(f"Grafana could not {what}: HTTP {response.status_code} {str(detail)[:200]}")


def dashboard_json() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"
