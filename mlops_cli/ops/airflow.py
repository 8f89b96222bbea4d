"""`mlops train --runner airflow`: trigger the training DAG through Airflow 3's REST API (v2)
and follow its chain of runs until the source is exhausted."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_cli.config import Settings
from mlops_cli.errors import MlopsError

if TYPE_CHECKING:
    from mlops_cli.pipeline.reports import RunReport

DAG_ID = "house_prices_training"
FINISHED = {"success", "failed"}


def dags_folder(settings: Settings) -> Path:
    """This project's DAG folder (``dags/`` beside the package, or MLOPS_AIRFLOW_DAGS_FOLDER)."""
    if settings.airflow_dags_folder:
        return settings.airflow_dags_folder
    from mlops_cli.ops import PROJECT_ROOT

    folder = PROJECT_ROOT / "dags"
    if not (folder / "house_prices_training.py").exists():
        raise MlopsError("the DAG folder was not found", hint="set MLOPS_AIRFLOW_DAGS_FOLDER to the project's dags/")
    return folder


@dataclass(kw_only=True)
class RunView:
    run_id: str
    state: str
    conf: dict[str, Any]
    tasks: dict[str, str] = field(default_factory=dict)
    batch: int | None = None


class AirflowClient:
    """The few REST calls we need, authenticated the way Airflow 3 expects (a JWT from /auth/token)."""

    def __init__(self, settings: Settings) -> None:
        import httpx

        self.base = str(settings.airflow_url).rstrip("/")
        self.settings = settings
        self.http = httpx.Client(base_url=self.base, timeout=30)
        self._token: str | None = None

    def _auth(self) -> dict[str, str]:
        import httpx

        if self._token is None:
            try:
                if self.settings.airflow_user:
                    password = (
                        self.settings.airflow_password.get_secret_value() if self.settings.airflow_password else ""
                    )
                    response = self.http.post(
                        "/auth/token", json={"username": self.settings.airflow_user, "password": password}
                    )
                else:
                    response = self.http.get("/auth/token")
            except httpx.HTTPError as exc:
                raise MlopsError(
                    f"Airflow at {self.base} is not reachable ({type(exc).__name__})",
                    hint="start it with `mlops up --with airflow` or set MLOPS_AIRFLOW_URL",
                ) from None
            if response.status_code >= 400:
                raise MlopsError(
                    f"Airflow refused a token: HTTP {response.status_code} {response.text[:200]}",
                    hint="set MLOPS_AIRFLOW_USER and MLOPS_AIRFLOW_PASSWORD",
                )
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.http.request(method, f"/api/v2{path}", headers=self._auth(), **kwargs)
        except httpx.HTTPError as exc:
            raise MlopsError(f"Airflow at {self.base} stopped answering ({type(exc).__name__})") from None
        if response.status_code == 404 and path.startswith(f"/dags/{DAG_ID}") and "xcom" not in path:
            raise MlopsError(
                f"Airflow does not know the DAG {DAG_ID}",
                hint="point its dags folder at this project's dags/ (`mlops up --with airflow` does)",
            )
        if response.status_code >= 400:
            return {"_status": response.status_code, "detail": response.text[:300]}
        return response.json()

    def wait_for_dag(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            found = self.call("GET", "/dags", params={"dag_id_pattern": DAG_ID})
            if any(d.get("dag_id") == DAG_ID for d in found.get("dags", [])):
                return
            if time.monotonic() > deadline:
                raise MlopsError(
                    f"Airflow has not parsed the DAG {DAG_ID} after {timeout:.0f}s", hint="check `mlops logs airflow`"
                )
            time.sleep(2)

    def trigger(self, conf: dict[str, Any]) -> str:
        """Unpause the DAG and start a run with ``conf`` (its params)."""
        self.call("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
        run = self.call("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf})
        if "_status" in run:
            raise MlopsError(f"Airflow did not start a run: HTTP {run['_status']} {run['detail']}")
        return run["dag_run_id"]

    def runs_since(self, since: str) -> list[RunView]:
        body = self.call(
            "GET", f"/dags/{DAG_ID}/dagRuns", params={"order_by": "run_after", "run_after_gte": since, "limit": 100}
        )
        return [
            RunView(run_id=r["dag_run_id"], state=r["state"], conf=r.get("conf") or {})
            for r in body.get("dag_runs", [])
        ]

    def task_states(self, run_id: str) -> dict[str, str]:
        body = self.call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
        return {t["task_id"]: t["state"] or "none" for t in body.get("task_instances", [])}

    def fetched(self, run_id: str) -> dict[str, Any]:
        body = self.call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/fetch/xcomEntries/return_value")
        value = body.get("value") if isinstance(body, dict) else None
        return value if isinstance(value, dict) else {}


@dataclass(kw_only=True)
class AirflowResult:
    run_id: str
    runs: list[RunView] = field(default_factory=list)
    report: RunReport | None = None
    failed: list[str] = field(default_factory=list)


def _last_round(settings: Settings) -> int:
    from mlops_cli.store.db import engine_for
    from mlops_cli.store.rounds import last_round_id

    return last_round_id(engine_for(settings))


def run_via_airflow(
    settings: Settings,
    *,
    batch: int | None = None,
    restart: bool = False,
    reload_api: bool = True,
    wait: bool = True,
    on_update: Callable[[list[RunView]], None] | None = None,
    timeout: float = 3600,
) -> AirflowResult:
    """Trigger one run (``batch``: that batch only; else the chain until the source is exhausted),
    follow it, and report the rounds it processed exactly as the local runner does."""
    from mlops_cli.pipeline.reports import report_rounds

    client = AirflowClient(settings)
    client.wait_for_dag()
    since = datetime.now(UTC).isoformat()
    before = _last_round(settings)
    conf: dict[str, Any] = {"chain": 0, "restart": restart, "source": settings.data_source, "reload_api": reload_api}
    if batch is not None:
        conf["batch"] = batch
    first = client.trigger(conf)
    if not wait:
        return AirflowResult(run_id=first)
    deadline = time.monotonic() + timeout
    while True:
        runs = client.runs_since(since)
        for run in runs:
            run.tasks = client.task_states(run.run_id)
            if run.tasks.get("fetch") == "success":
                run.batch = client.fetched(run.run_id).get("batch")
        if on_update:
            on_update(runs)
        settled = runs and all(r.state in FINISHED for r in runs)
        last = runs[-1] if runs else None
        chain_over = last is not None and (
            last.state == "failed" or batch is not None or last.tasks.get("trigger_next_batch") in ("skipped", "none")
        )
        if settled and chain_over:
            break
        if time.monotonic() > deadline:
            raise MlopsError(f"the Airflow runs did not finish within {timeout:.0f}s", hint="see the Airflow UI")
        time.sleep(settings.airflow_poll_interval)
    last_tasks = runs[-1].tasks
    if last_tasks.get("fetch") == "skipped":
        end, message = "waited", "the data API kept repeating its batch for MLOPS_DATA_MAX_WAIT seconds"
    elif last_tasks.get("has_round") == "skipped":
        end, message = "exhausted", "the data source has no more batches"
    else:
        end, message = ("batch" if batch is not None else "exhausted"), None
    from mlops_cli.store.db import engine_for
    from mlops_cli.store.rounds import round_ids

    engine = engine_for(settings)
    rounds = round_ids(engine, after=before)
    return AirflowResult(
        run_id=first,
        runs=runs,
        report=report_rounds(engine, rounds, end=end, message=message),
        failed=[r.run_id for r in runs if r.state == "failed"],
    )
