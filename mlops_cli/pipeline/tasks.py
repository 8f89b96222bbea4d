"""The Airflow DAG's task functions: settings from the environment (MLOPS_*), round ids in and
out through XCom, each under the data DB's writer lock, each one call into the engine — the
same steps the local runner takes, so a retried or re-run task resumes its round."""

from __future__ import annotations

from typing import Any

from mlops_cli.errors import SourceExhausted
from mlops_cli.pipeline.context import FINAL_STATES, Pipeline, open_pipeline
from mlops_cli.pipeline.dataset import age_out_events, claim_dataset, restart_dataset
from mlops_cli.pipeline.engine import (
    advance,
    fetch,
    store,
    unfinished_rounds,
)
from mlops_cli.pipeline.reports import batch_record
from mlops_cli.store.rounds import get_round

# How long an orchestrator task queues behind another writer before failing (and being retried).
TASK_LOCK_WAIT = 60.0


def _task_pipeline(source: str | None, reload_api: bool = True) -> Pipeline:
    from mlops_cli.config import load_settings

    return open_pipeline(load_settings(data_source=source), reload_api=reload_api, actor="airflow")


def task_prepare(*, source: str | None = None, restart: bool = False) -> None:
    """First task of a run: ``--restart`` (first run of a chain only), or the source check."""
    from mlops_cli.store.locking import writer_lock

    pipe = _task_pipeline(source)
    with writer_lock(pipe.engine, wait=TASK_LOCK_WAIT):
        restart_dataset(pipe) if restart else claim_dataset(pipe)
        age_out_events(pipe)


def task_fetch(*, source: str | None = None, batch: int | None = None) -> dict[str, Any] | None:
    """The round a run works on: an unfinished one, else a new answer of the source.

    Returns ``{"round": id, "batch": n}``, ``{"exhausted": detail}``, or None when the source
    repeated a batch without anything new (the caller waits and asks again).
    """
    from mlops_cli.store.locking import writer_lock

    pipe = _task_pipeline(source)
    with writer_lock(pipe.engine, wait=TASK_LOCK_WAIT):
        claim_dataset(pipe)
        pending = unfinished_rounds(pipe.engine)
        if pending:
            return {"round": pending[0], "batch": get_round(pipe.engine, pending[0])["batch"]}
        try:
            fetched = fetch(pipe, batch)
        except SourceExhausted as done:
            return {"exhausted": done.detail}
        store(pipe, fetched.round_id)  # a repeat that adds nothing is no work for this run
        if get_round(pipe.engine, fetched.round_id)["state"] in FINAL_STATES:
            return None
        return {"round": fetched.round_id, "batch": fetched.batch}


def task_advance(round_id: int, target: str, *, source: str | None = None, reload_api: bool = True) -> dict[str, Any]:
    """One orchestrator task: the round's steps up to ``target``, under the writer lock."""
    from mlops_cli.store.locking import writer_lock

    pipe = _task_pipeline(source, reload_api)
    with writer_lock(pipe.engine, wait=TASK_LOCK_WAIT):
        r = advance(pipe, round_id, target)
    for warning in pipe.warnings:
        print(f"warning: {warning}")
    return {
        "round": round_id,
        "batch": r["batch"],
        "state": r["state"],
        "retrain": bool(r["retrained"]),
        "promoted": bool(r["promoted"]),
    }


def task_result(round_id: int, *, source: str | None = None) -> dict[str, Any]:
    """The DAG's ``log_result``: the round's batch record, as `mlops train --json` gives it (XCom),
    and its reasoning in the task's log."""
    pipe = _task_pipeline(source)
    record = batch_record([get_round(pipe.engine, round_id)])
    print(f"batch {record.batch}: {record.reason}")
    return {"round": round_id, **record.summary()}
