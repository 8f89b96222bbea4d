"""The DAG's task functions without Airflow (fast): a run of tasks as the DAG chains them ends
each round where the local runner does, a task run twice does nothing twice, and XCom gets
round ids and the batch record only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_cli.pipeline.tasks import task_advance, task_fetch, task_prepare, task_result
from mlops_cli.store.db import engine_for
from mlops_cli.store.rounds import batch_log_rows
from tests.conftest import small_generator_env

# the DAG's chain of targets, branch by branch (see dags/house_prices_training.py)
BEFORE_DECISION = ("schema_checked", "quality_checked", "cleaned", "validated", "decided")


def dag_run(batch: int | None = None) -> dict | None:
    """One DAG run's tasks in order; None when the source repeated itself (the sensor waits)."""
    task_prepare()
    found = task_fetch(batch=batch)
    if found is None or "exhausted" in found:
        return found
    for target in BEFORE_DECISION:
        last = task_advance(found["round"], target, reload_api=False)
        assert last["round"] == found["round"]
    if last["retrain"]:  # the branch: train → compare → promote | reject
        task_advance(found["round"], "trained", reload_api=False)
        task_advance(found["round"], "compared", reload_api=False)
    task_advance(found["round"], "done", reload_api=False)
    return task_result(found["round"])


def test_task_runs_end_each_round_as_the_local_runner_does(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_cli.config import load_settings
    from mlops_cli.pipeline.train import run

    small_generator_env(monkeypatch, batches=3, rows=200)
    records = []
    while (result := dag_run()) is not None and "exhausted" not in result:
        json.dumps(result)  # XCom: plain JSON
        records.append(result)
    assert [r["batch"] for r in records] == [0, 1, 2]
    assert records[0]["retrained"] and records[0]["version"] == 1 and records[0]["champion_version"] == 1
    rounds = batch_log_rows(engine_for_home())
    assert [r["state"] for r in rounds] == ["done"] * 3
    assert all(r["validation"]["schema"]["handled"] is not None and r["validation"]["quality"] for r in rounds)

    again = task_advance(rounds[-1]["id"], "done", reload_api=False)  # a retried task after its success
    assert again["state"] == "done" and batch_log_rows(engine_for_home()) == rounds, "nothing done twice"
    assert dag_run() == {"exhausted": result["exhausted"]}

    local = load_settings(home=home.parent / "local" / ".mlops")
    report = run(local, reload_api=False)

    def decided(record: dict) -> tuple:
        return tuple(record[k] for k in ("batch", "retrained", "version", "champion_version", "rows_kept", "cause"))

    assert [decided(r) for r in records] == [decided(b.summary()) for b in report.batches]


def engine_for_home():  # noqa: ANN201
    from mlops_cli.config import load_settings

    return engine_for(load_settings())
