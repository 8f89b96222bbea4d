"""`mlops train`: the local runner of the batch engine. It finishes what an interrupted run left,
then processes one batch or every batch until the source is exhausted, waiting (with a
countdown) while a data API repeats its batch, all under the data DB's writer lock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from mlops_cli.errors import MlopsError, SourceExhausted
from mlops_cli.pipeline.context import Pipeline, Progress, open_pipeline
from mlops_cli.pipeline.dataset import age_out_events, claim_dataset, restart_dataset
from mlops_cli.pipeline.engine import (
    Fetched,
    fetch,
    process_round,
    unfinished_rounds,
)
from mlops_cli.pipeline.reports import RunReport, report_rounds
from mlops_cli.store.rounds import rounds_of_batch, skipped_round_ids

if TYPE_CHECKING:
    from mlops_cli.config import Settings


def _wait(pipe: Pipeline, seconds: float, text: Callable[[float], str]) -> None:
    """Sleep ``seconds``, with a live countdown."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        pipe.say(text(left))
        time.sleep(min(1.0, left))


def run(
    settings: Settings,
    *,
    batch: int | None = None,
    restart: bool = False,
    wait: bool = True,
    wait_lock: bool = False,
    reload_api: bool = True,
    progress: Progress | None = None,
) -> RunReport:
    """``mlops train``: resume unfinished rounds, then process ``batch`` (or every batch until the
    source is exhausted), holding the data DB's writer lock throughout.

    When a data API answers the batch number it already answered (its next batch is not released
    yet), the loop polls every ``MLOPS_DATA_POLL_INTERVAL`` seconds for up to ``MLOPS_DATA_MAX_WAIT``,
    or stops at once when ``wait`` is False.
    """
    from mlops_cli.store.locking import writer_lock

    pipe = open_pipeline(settings, reload_api=reload_api, progress=progress)
    touched: list[int] = []
    with writer_lock(pipe.engine, wait=wait_lock, on_wait=progress):
        restart_dataset(pipe) if restart else claim_dataset(pipe)
        age_out_events(pipe)
        for round_id in unfinished_rounds(pipe.engine):
            touched.append(round_id)
            process_round(pipe, round_id)
        report = _run_one(pipe, batch, touched) if batch is not None else _run_all(pipe, wait, touched)
    report.source, report.followed = pipe.settings.data_source, pipe.followed
    return report


def _run_one(pipe: Pipeline, batch: int, touched: list[int]) -> RunReport:
    if pipe.source.replayable:
        states = [r["state"] for r in rounds_of_batch(pipe.engine, batch)]
        if states and states[-1] not in ("rejected", "skipped"):
            return report_rounds(
                pipe.engine,
                touched,
                end="batch",
                message=f"batch {batch} was processed already",
                warnings=pipe.warnings,
            )
    try:
        fetched = fetch(pipe, batch)
    except SourceExhausted as done:
        raise MlopsError(
            f"batch {batch} is not available: {done.detail}",
            hint="`mlops batches list` shows what was processed; `mlops train --all` takes every batch left",
        ) from None
    touched += [*_skipped_ids(pipe, fetched), fetched.round_id]
    process_round(pipe, fetched.round_id)
    if fetched.batch != batch:
        raise MlopsError(
            f"asked for batch {batch}, the data API served batch {fetched.batch} (stored and processed): "
            "it hands out batches in its own order",
            hint="`mlops train --all` takes whatever it serves next",
        )
    return report_rounds(pipe.engine, touched, end="batch", warnings=pipe.warnings)


def _skipped_ids(pipe: Pipeline, fetched: Fetched) -> list[int]:
    if not fetched.skipped:
        return []
    return skipped_round_ids(pipe.engine, fetched.skipped)


def _run_all(pipe: Pipeline, wait: bool, touched: list[int]) -> RunReport:
    settings = pipe.settings
    waiting_since: float | None = None
    while True:
        try:
            fetched = fetch(pipe)
        except SourceExhausted as done:
            return report_rounds(pipe.engine, touched, end="exhausted", message=done.detail, warnings=pipe.warnings)
        touched += [*_skipped_ids(pipe, fetched), fetched.round_id]
        process_round(pipe, fetched.round_id)
        if not fetched.repeat:
            waiting_since = None
            continue
        waiting_since = waiting_since or time.monotonic()
        waited = time.monotonic() - waiting_since
        if not wait or waited >= settings.data_max_wait:
            end, message = (
                ("repeating", f"the data API repeats batch {fetched.batch}: its next batch is not released yet")
                if not wait
                else ("waited", f"the data API still served batch {fetched.batch} after {waited:.0f}s of waiting")
            )
            return report_rounds(pipe.engine, touched, end=end, message=message, warnings=pipe.warnings)
        pause = min(settings.data_poll_interval, settings.data_max_wait - waited)
        _wait(
            pipe,
            pause,
            lambda left, n=fetched.batch, w=waited: (
                f"batch {n} answered again: next call in {left:.0f}s (waited {w:.0f}s of {settings.data_max_wait:.0f}s)"
            ),
        )
