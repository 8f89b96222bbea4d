"""The training DAG in a real Airflow 3: DagBag import, ruff's AIR rules, `dag.test()` until the
source is exhausted (against the built-in source over loopback HTTP), and a failing source.
Airflow runs from its own test environment (conftest.airflow_bin), never this one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_json, small_generator_env

pytestmark = pytest.mark.slow
DAGS = REPO / "dags"


@pytest.fixture
def airflow_env(home: Path, tmp_path: Path, airflow_bin: Path) -> dict[str, str]:
    """A fresh Airflow home with a migrated SQLite metadata DB; the Airflow environment's
    commands first on PATH (``airflow``, and ``python`` for the DAG runs)."""
    env = {
        **os.environ,
        "PATH": f"{airflow_bin}{os.pathsep}{os.environ['PATH']}",
        "AIRFLOW_PYTHON": str(airflow_bin / "python"),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "MLOPS_AIRFLOW_RETRY_DELAY": "1",
        "MLOPS_AIRFLOW_RETRIES": "1",
    }
    migrated = subprocess.run(
        [str(airflow_bin / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    return env


def dag_runs(env: dict[str, str], max_runs: int = 20) -> list[dict]:
    result = subprocess.run(
        [env["AIRFLOW_PYTHON"], "-m", "tests.dags.dag_runs", str(max_runs), str(DAGS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=REPO,
    )
    runs = [json.loads(line[4:]) for line in result.stdout.splitlines() if line.startswith("RUN ")]
    assert runs, result.stdout[-3000:] + result.stderr[-3000:]
    return runs


def test_dagbag_imports_without_errors_and_ruff_air_is_clean(airflow_env: dict[str, str]) -> None:
    result = subprocess.run(
        [airflow_env["AIRFLOW_PYTHON"], "-m", "tests.dags.dag_runs", "inspect", str(DAGS)],
        env=airflow_env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    line = next((line for line in result.stdout.splitlines() if line.startswith("BAG ")), None)
    assert line, result.stderr[-3000:]
    bag = json.loads(line[4:])
    assert bag["import_errors"] == {} and bag["dags"] == ["house_prices_training"]
    assert bag["max_active_runs"] == 1 and bag["catchup"] is False and "mlops" in bag["tags"]
    assert bag["tasks"] == sorted(
        [
            "prepare",
            "fetch",
            "has_round",
            "validate_schema",
            "validate_quality",
            "clean",
            "validate",
            "decide",
            "train",
            "no_retrain",
            "compare",
            "promote",
            "reject",
            "log_result",
            "next_chain",
            "trigger_next_batch",
        ]
    )
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "AIR", str(DAGS)], capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout


def test_dag_consumes_the_course_server_exactly_once_like_the_local_runner(
    course_server,
    airflow_env: dict[str, str],
    home: Path,
    tmp_path: Path,
    monkeypatch,
) -> None:
    """The course server answers each batch again inside its release window, then a 500, then its
    Spanish end of data: the DAG's fetch sensor reschedules itself on repeats instead of chaining a
    run, and the registry ends as the local runner's on the same listings."""
    from tests.conftest import course_batches

    small_generator_env(monkeypatch)
    api = course_server(course_batches(5, 300), window=2, repeats=1)  # every batch is answered again
    env = {**airflow_env, "MLOPS_DATA_SOURCE": api.url, "MLOPS_DATA_POLL_INTERVAL": "0.5", "MLOPS_DATA_BACKOFF": "0"}
    runs = dag_runs(env)
    *batches, last = runs
    assert len(batches) == 5, runs
    for run in batches:
        assert run["state"] == "success" and run["tasks"]["trigger_next_batch"] == "success", run
        trained = run["tasks"]["train"] == "success"
        assert run["tasks"]["compare"] == ("success" if trained else "skipped")
        assert run["tasks"]["no_retrain"] == ("skipped" if trained else "success")
        branches = sorted(run["tasks"][t] for t in ("promote", "reject"))
        assert branches == (["skipped", "success"] if trained else ["skipped", "skipped"]), run
        assert run["tasks"]["log_result"] == "success"
    assert last["state"] != "failed" and last["tasks"]["fetch"] == last["tasks"]["has_round"] == "success"
    downstream = {k: v for k, v in last["tasks"].items() if k not in ("prepare", "fetch", "has_round")}
    assert set(downstream.values()) == {"skipped"}, "nothing downstream runs after exhaustion"
    assert all("day=" not in query for query in api.queries)
    import sqlite3

    with sqlite3.connect(home / "data.db") as db:
        rounds = db.execute("SELECT batch, state FROM batch_log ORDER BY id").fetchall()
    assert [b for b, state in rounds if state == "done"] == [0, 1, 2, 3, 4], rounds
    assert {state for _, state in rounds} == {"done", "duplicate"}, "the sensor was answered the same batch again"

    airflow_models = run_json("models", "list")
    local_home = tmp_path / "local" / ".mlops"
    local = {"MLOPS_HOME": str(local_home)}
    assert run_mlops_ok("train", "--all", env=local)
    local_models = run_json("models", "list", env=local)

    def state(models: list[dict]) -> list[tuple]:
        return [(m["version"], m["batches"], round(m["rmse"], 6), m["aliases"]) for m in models]

    assert state(airflow_models) == state(local_models)

    def decisions(batches: list[dict]) -> list[tuple]:
        """The audit record: the same triggers, decisions and outcomes (and which branch ran)."""
        return [
            (b["batch"], b["retrained"], b["cause"], b["triggers"], b["outcome"], b["version"], b["deltas"])
            for b in batches
        ]

    airflow_batches = run_json("batches", "list")
    assert decisions(airflow_batches) == decisions(run_json("batches", "list", env=local))
    for run, b in zip(batches, airflow_batches, strict=True):
        if b["retrained"]:
            taken = "promote" if b["outcome"] in ("first", "promoted") else "reject"
            assert run["tasks"][taken] == "success", (run, b["outcome"])


def run_mlops_ok(*args: str, env: dict[str, str]) -> bool:
    from tests.conftest import run_mlops

    result = run_mlops(*args, env=env)
    assert result.returncode == 0, result.stderr
    return True


def test_a_failing_source_is_retried_then_fails_clearly_leaving_stored_data_whole(
    airflow_env: dict[str, str], home: Path
) -> None:
    from tests.conftest import ScriptedAPI, batch_body

    row = json.loads(batch_body(0))["data"][0]
    rows = [{**row, "price": 200_000 + 1_000 * i, "house_size": 900 + 10 * i} for i in range(30)]
    ok = json.dumps({"group_number": 1, "batch_number": 0, "data": rows})
    api = ScriptedAPI([(200, ok, 0)] + [(500, "boom", 0)] * 50)
    try:
        env = {**airflow_env, "MLOPS_DATA_SOURCE": api.url, "MLOPS_DATA_RETRIES": "1", "MLOPS_DATA_BACKOFF": "0"}
        runs = dag_runs(env, max_runs=2)
    finally:
        api.server.shutdown()
    assert runs[0]["state"] == "success" and runs[0]["tasks"]["log_result"] == "success"
    failed = runs[1]
    assert failed["state"] == "failed" and failed["tasks"]["fetch"] == "failed"
    attempts = [path for path in api.calls if path.startswith("/data")]
    assert len(attempts) == 1 + 2 * 2, "1 good batch, then 2 Airflow tries x 2 HTTP attempts each"

    import sqlite3

    with sqlite3.connect(home / "data.db") as db:
        assert db.execute("SELECT batch, count(*) FROM raw_data GROUP BY batch").fetchall() == [(0, 30)]
        assert db.execute("SELECT batch, state FROM batch_log").fetchall() == [(0, "done")]
