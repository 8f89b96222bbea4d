"""The batch engine: every answer of the data source is processed exactly once, whatever happens.

Each answer is a *round*, one row of ``batch_log`` with a durable state::

    fetched → stored → schema_checked → quality_checked → cleaned → validated → decided ─┬──→ done
                                                                   └→ trained → compared → done

Here: ``fetch``, ``store``, ``decide`` and the state machine; the dataset's source is in
:mod:`.dataset`, the checks up to
``validated`` are in :mod:`.checks`, the steps after the decision in :mod:`.release`, the DAG's
task functions in :mod:`.tasks`, what a run reports in :mod:`.reports`.
``validated`` holds the round's whole validation report (the champion's error on its rows
included); ``decided`` is computed from that report and the round counts alone, so every
decision can be recomputed from what is stored.

Final states besides ``done``: ``duplicate`` (the answer added no row), ``empty`` (it had none),
``rejected`` (unusable; its body is kept for inspection) and ``skipped`` (a batch number the
source never served). Each step writes its output and the round's next state in one
transaction, so after a crash the round sits at a state from which its next step simply runs:
a rerun resumes every unfinished round before asking the source for anything new.

Answers of a remote data API are stored as received before anything else (write-ahead): the
server has moved on once it answered, so nothing that fails later may lose them. The local
runner (:func:`run`) and the Airflow DAG call the same step functions through
:func:`process_round`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import MalformedBatchError, SourceExhausted, SourceWentBack
from mlops_cli.faults import checkpoint
from mlops_cli.pipeline.checks import check_quality, check_schema, clean, validate
from mlops_cli.pipeline.context import COUNTED, FINAL_STATES, ORDER, Pipeline, open_pipeline, with_parts
from mlops_cli.pipeline.release import compare, finish, train
from mlops_cli.store import listings, meta
from mlops_cli.store.rounds import (
    counted_rounds,
    get_round,
    last_batch,
    recorded_batches,
    round_ids,
    update_round,
)
from mlops_cli.store.tables import now

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from mlops_cli.pipeline.sources import DataSource

# The step functions and the context, importable from here as before.
__all__ = [
    "Pipeline",
    "check_quality",
    "check_schema",
    "clean",
    "compare",
    "finish",
    "open_pipeline",
    "train",
    "validate",
]

# --- fetch: one answer, stored before anything else ------------------------------------------------


@dataclass(kw_only=True)
class Fetched:
    round_id: int
    batch: int
    repeat: bool = False  # the same batch number as the latest one received
    skipped: list[int] = field(default_factory=list)
    answered_in: float | None = None  # a data API's time to answer (request → whole body), seconds


def next_local_batch(pipe: Pipeline) -> int:
    """For a replayable source: its first batch the data DB has no record of."""
    with pipe.engine.connect() as conn:
        recorded = recorded_batches(conn)
    numbers = pipe.source.numbers()  # type: ignore[attr-defined]
    pending = [n for n in numbers if n not in recorded]
    if not pending:
        raise SourceExhausted(f"all {len(numbers)} batches of {pipe.source.name} are processed")
    return pending[0]


def fetch(pipe: Pipeline, batch: int | None = None) -> Fetched:
    """Ask the source for an answer and record it as a round in state ``fetched``.

    For a remote data API the answer's body is stored in the same transaction (write-ahead);
    a batch number below one already received means the server restarted: the answer is kept
    as a rejected round and :class:`SourceWentBack` is raised. Batch numbers the source jumped
    over are recorded as ``skipped`` rounds.
    """
    from mlops_cli.store.rounds import add_round, write_body

    source = pipe.source
    if source.replayable and batch is None:
        batch = next_local_batch(pipe)
    pipe.say("asking the source for the next batch" if batch is None else f"batch {batch}: reading the source")
    answer = _ask(source, batch)
    number = answer.number
    if answer.body is not None and answer.seconds is not None:
        count = f"{len(answer.rows):,} rows, " if isinstance(answer.rows, list) else ""
        pipe.say(f"batch {number}: answered ({count}{len(answer.body) / 1e6:.1f} MB in {answer.seconds:.1f} s)")
    with pipe.engine.begin() as conn:
        last = last_batch(conn)
        fields: dict[str, Any] = {"batch": number, "received_at": now(), "source": source.name[:255]}
        if answer.body is not None:
            fields.update(answer_bytes=len(answer.body), answer_sha256=hashlib.sha256(answer.body).hexdigest())
        went_back = not source.replayable and last is not None and number < last
        if went_back:
            fields.update(state="rejected", error=_went_back(last, number), finished_at=now())
        else:
            fields["state"] = "fetched"
        skipped = _gap(pipe, conn, last, number)
        gap = {"state": "skipped", "received_at": now(), "finished_at": now(), "source": source.name[:255]}
        for missing in skipped:
            add_round(conn, batch=missing, **gap)
        round_id = add_round(conn, **fields)
        if answer.body is not None:
            write_body(conn, round_id, answer.body)
    if went_back:
        raise SourceWentBack(
            _went_back(last, number) + "; nothing stored was changed",
            hint="`mlops train --all --restart` starts a fresh dataset from batch 0",
        )
    checkpoint("fetched", number)
    pipe.answers[round_id] = answer.rows
    return Fetched(round_id=round_id, batch=number, repeat=number == last, skipped=skipped, answered_in=answer.seconds)


def _ask(source: DataSource, batch: int | None) -> Any:
    """The source's answer; an in-process source's rows as columns (no dict per row)."""
    from mlops_cli.pipeline.sources import IndexedSource

    return source.fetch(batch, columnar=True) if isinstance(source, IndexedSource) else source.fetch(batch)


def _went_back(last: int, number: int) -> str:
    if number == 0:
        return f"the data API served batch 0 after batch {last}: it restarted its data generation"
    return f"the data API went back from batch {last} to batch {number}"


def _gap(pipe: Pipeline, conn: Connection, last: int | None, number: int) -> list[int]:
    """Batch numbers between the latest one and ``number`` that the source will never serve."""
    first = 0 if last is None else last + 1
    if number <= first:
        return []
    if pipe.source.replayable:
        served = set(pipe.source.numbers())  # type: ignore[attr-defined]
        recorded = recorded_batches(conn)
        return [n for n in range(first, number) if n not in served and n not in recorded]
    if number - first > pipe.settings.data_max_skip:  # a broken or hostile server, not lost batches
        from mlops_cli.errors import SourceError

        raise SourceError(
            f"the data API {'started at' if last is None else f'jumped from batch {last} to'} batch {number} "
            f"({number - first:,} numbers skipped, "
            f"more than MLOPS_DATA_MAX_SKIP={pipe.settings.data_max_skip}); nothing was stored",
            hint="check the data API; raise MLOPS_DATA_MAX_SKIP if such jumps are expected",
        )
    return list(range(first, number))


# --- the steps ------------------------------------------------------------------------------------


def store(pipe: Pipeline, round_id: int) -> None:
    """``fetched`` → ``stored``: the answer's new rows merged into the batch's raw rows, extra
    columns included (``duplicate``/``empty`` when it brings none; ``rejected`` when it is
    unusable: a required column missing, a numeric column of text). The columns it arrived with
    are recorded for :func:`.checks.check_schema`; a round that ends here has them judged here."""
    from mlops_cli.pipeline.ingest import new_rows, normalised_rows, rows_of_body, schema_report
    from mlops_cli.store.rounds import drop_body, read_body

    r = get_round(pipe.engine, round_id)
    batch, what = r["batch"], f"batch {r['batch']} from {pipe.source.name}"
    pipe.say(f"batch {batch}: storing the answer")
    received: dict[str, Any] = {}
    try:
        rows = pipe.answers.pop(round_id, None)
        if rows is None:
            with pipe.engine.connect() as conn:
                body = read_body(conn, round_id)
            rows = rows_of_body(body, what) if body is not None else _ask(pipe.source, batch).rows
        frame = normalised_rows(rows, what, report=received)
    except MalformedBatchError as exc:
        with pipe.engine.begin() as conn:
            schema = schema_report(received, _first_columns(conn))
            rejected = {"state": "rejected", "error": exc.message, "finished_at": now()}
            update_round(conn, round_id, validation=with_parts(r, schema=schema), **rejected)
        raise
    with pipe.engine.begin() as conn:
        stored = listings.raw_rows_of_batch(conn, batch)
        fresh = new_rows(stored, frame).assign(batch=batch, round=round_id)
        written = listings.add_raw_rows(conn, fresh)
        state = "stored" if len(fresh) else ("duplicate" if len(frame) else "empty")
        final = {"finished_at": now()} if state != "stored" else {}
        # what arrived, judged by check_schema; a round that ends here is judged here
        schema = received if state == "stored" else schema_report(received, _first_columns(conn))
        update_round(
            conn,
            round_id,
            state=state,
            rows_received=len(frame),
            rows_new=len(fresh),
            validation=with_parts(r, schema=schema),
            **final,
        )
        if state != "stored":
            drop_body(conn, round_id)  # nothing new in it: every row is in raw_data already
    if state == "stored":  # committed: the quality check takes these rows from memory, not from the DB again
        pipe.stored[round_id] = written
    checkpoint("stored", batch)


def _first_columns(conn: Connection) -> list[str] | None:
    first = meta.first_schema(conn)
    return None if first is None else first["received"]


def decide(pipe: Pipeline, round_id: int) -> None:
    """``validated`` → ``decided``: retrain or not, by every trigger, from the round's validation
    report and the round counts alone (nothing is read or scored again)."""
    from mlops_cli.pipeline.decide import decide_retrain
    from mlops_cli.schema import REQUIRED

    r = get_round(pipe.engine, round_id)
    pipe.say(f"batch {r['batch']}: deciding")
    validation = r["validation"] or {}
    with pipe.engine.begin() as conn:
        counted = counted_rounds(conn, round_id, tuple(COUNTED))
        last_retrain = max((row.id for row in counted if row.retrained and row.id < round_id), default=0)
        first = meta.first_schema(conn) or {}
        as_text = (validation.get("schema") or {}).get("numbers_as_text") or []
        decision = decide_retrain(
            pipe.settings,
            rows=r["rows_kept"] or 0,
            has_champion=validation.get("champion") is not None,
            drift=r["drift"] or {},
            new_rows=sum(row.rows_kept or 0 for row in counted if row.id > last_retrain),
            total_rows=sum(row.rows_kept or 0 for row in counted),
            train_rows=(validation.get("sufficiency") or {}).get("train_rows"),
            new_category_share=(validation.get("new_categories") or {}).get("share"),
            degradation=(r["champion_on_batch"] or {}).get("mae_change"),
            schema_changed=[c for c in as_text if c in REQUIRED and c not in first.get("numbers_as_text", [])],
        )
        update_round(
            conn,
            round_id,
            state="decided",
            new_rows=decision.new_rows,
            total_rows=decision.total_rows,
            new_share=decision.new_share,
            retrained=decision.retrain,
            decision=decision.to_dict(),
        )
    checkpoint("decided", r["batch"])


def _after_decided(pipe: Pipeline, round_id: int) -> None:
    (train if get_round(pipe.engine, round_id)["retrained"] else finish)(pipe, round_id)


NEXT_STEP: dict[str, Callable[[Pipeline, int], None]] = {
    "fetched": store,
    "stored": check_schema,
    "schema_checked": check_quality,
    "quality_checked": clean,
    "cleaned": validate,
    "validated": decide,
    "decided": _after_decided,
    "trained": compare,
    "compared": finish,
}


def _step(pipe: Pipeline, r: dict[str, Any]) -> None:
    """The round's next step; a data DB failure becomes one clear error (the step's transaction
    was rolled back, so the round stays where it was and a rerun resumes it)."""
    from mlops_cli.errors import ConnectionDropped, StorageError, disk_full, is_disk_full
    from mlops_cli.store.db import describe, is_database_error, is_disconnect

    try:
        NEXT_STEP[r["state"]](pipe, r["id"])
    except Exception as exc:
        if is_disk_full(exc):  # the data DB's, MLflow's or the artifacts' disk: said as such
            raise disk_full(
                pipe.settings.home, f"batch {r['batch']} stays {r['state']}, nothing half-written was kept"
            ) from None
        if is_disconnect(exc):
            raise ConnectionDropped(
                f"lost the connection to {describe(pipe.engine)} after batch {r['batch']} was {r['state']}",
                hint="check that the database server is up, then run the same command again: it resumes",
            ) from None
        if not is_database_error(exc):
            raise
        raise StorageError(
            f"the data DB failed after batch {r['batch']} was {r['state']} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})",
            hint="nothing half-written was kept: run the same command again to resume",
        ) from None


# A dropped data DB connection is a transient fault: the step (rolled back) runs again, from the
# round's stored state, this many times in a row before the run gives up.
DISCONNECT_RETRIES = 3


def process_round(pipe: Pipeline, round_id: int) -> dict[str, Any]:
    """Run every step ``round_id`` still needs; returns the round's final record."""
    import time

    from mlops_cli.errors import ConnectionDropped

    dropped = 0
    while True:
        try:
            r = get_round(pipe.engine, round_id)
            if r["state"] in FINAL_STATES:
                return r
            _step(pipe, r)
            dropped = 0
        except ConnectionDropped as exc:
            dropped += 1
            if dropped > DISCONNECT_RETRIES:
                raise
            pipe.say(f"{exc.message}: trying again ({dropped}/{DISCONNECT_RETRIES})")
            time.sleep(0.5 * 2 ** (dropped - 1))


def unfinished_rounds(engine: Engine) -> list[int]:
    return round_ids(engine, not_in=tuple(sorted(FINAL_STATES)))


def advance(pipe: Pipeline, round_id: int, target: str) -> dict[str, Any]:
    """Run the round's steps until its state reaches ``target`` (or a final state)."""
    while True:
        r = get_round(pipe.engine, round_id)
        if r["state"] in FINAL_STATES or ORDER.index(r["state"]) >= ORDER.index(target):
            return r
        _step(pipe, r)
