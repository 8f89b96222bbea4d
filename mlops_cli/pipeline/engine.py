"""The batch engine: every answer of the data source is processed exactly once, whatever happens.

Each answer is a *round*, one row of ``batch_log`` with a durable state::

    fetched → stored → schema_checked → quality_checked → cleaned → validated → decided ─┬──→ done
                                                                   └→ trained → compared → done

``fetch`` and ``store`` are here, the checks up to ``validated`` in :mod:`.checks`.
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
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import MalformedBatchError, SourceChanged, SourceExhausted, SourceWentBack
from mlops_cli.faults import checkpoint
from mlops_cli.pipeline.checks import check_quality, check_schema, clean, validate
from mlops_cli.pipeline.context import COUNTED, FINAL_STATES, ORDER, Pipeline, open_pipeline, with_parts
from mlops_cli.pipeline.records import BatchRecord
from mlops_cli.store import listings, meta
from mlops_cli.store.rounds import (
    counted_rounds,
    get_round,
    last_batch,
    recorded_batches,
    round_ids,
    rounds_of,
    update_round,
)
from mlops_cli.store.tables import now

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Connection, Engine

    from mlops_cli.config import Settings
    from mlops_cli.pipeline.sources import DataSource

# The step functions and the context, importable from here as before.
__all__ = ["Pipeline", "check_quality", "check_schema", "clean", "open_pipeline", "validate"]

# --- the dataset and its source ------------------------------------------------------------------


def _start_dataset(conn: Connection, pipe: Pipeline) -> None:
    meta.start_dataset(
        conn,
        dataset=uuid.uuid4().hex[:12],
        kind=pipe.source.kind,
        identity=pipe.source.identity(),
        setting=pipe.settings.data_source,
        created=now().isoformat(timespec="seconds"),
    )


def _follow_the_dataset(pipe: Pipeline, conn: Connection, stored: str) -> bool:
    """No source named (flag, MLOPS_DATA_SOURCE, config file): take the dataset's own source,
    e.g. the stack's data API after `mlops up --train`, so that `mlops train --all` goes on
    with it instead of refusing the built-in generator. False when that is not possible."""
    setting = meta.dataset_source(conn)[1]
    if "data_source" in pipe.settings.model_fields_set or setting in (None, pipe.settings.data_source):
        return False
    chosen, pipe.settings = pipe.settings, pipe.settings.model_copy(update={"data_source": setting})
    pipe.__dict__.pop("source", None)
    if pipe.source.identity() != stored:  # another group or day: not the same dataset after all
        pipe.settings = chosen
        pipe.__dict__.pop("source", None)
        return False
    pipe.followed = True
    pipe.say(f"following the dataset's source: {setting}")
    return True


def claim_dataset(pipe: Pipeline) -> None:
    """Check that the data DB's dataset comes from the configured source (or start one); with
    no source configured, follow the one the dataset was started from."""
    with pipe.engine.begin() as conn:
        stored = meta.dataset_source(conn)[0]
        if stored is None:
            _start_dataset(conn, pipe)
        elif stored != pipe.source.identity() and not _follow_the_dataset(pipe, conn, stored):
            raise SourceChanged(
                f"the data DB holds a dataset from {stored}, not from {pipe.source.identity()}",
                hint="`mlops train --all --restart` starts a fresh dataset from the new source (stored rows are "
                "deleted); or point MLOPS_DATA_DB_URL at another database",
            )
    pipe.__dict__.pop("dataset_id", None)


def restart_dataset(pipe: Pipeline) -> None:
    """``--restart``: the source starts again at its first batch; stored rows are forgotten.

    Registered versions and the promotion history stay: the next champion is compared with
    the current one as usual.
    """
    from mlops_cli.store.meta import wipe_dataset

    pipe.say("restarting the source")
    pipe.source.restart()
    with pipe.engine.begin() as conn:
        wipe_dataset(conn)
        _start_dataset(conn, pipe)
    pipe.__dict__.pop("dataset_id", None)


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


def train(pipe: Pipeline, round_id: int) -> None:
    """``decided`` → ``trained``: a version fitted on every clean training row so far, registered.

    After a crash, a version an earlier attempt registered is adopted instead of training again,
    and runs left RUNNING by earlier attempts are ended.
    """
    from mlops_cli.pipeline.decide import DriftReference
    from mlops_cli.pipeline.fit import adopt_earlier_attempt, train_and_register
    from mlops_cli.pipeline.records import decision_text
    from mlops_cli.registry.signing import sign_version

    r = get_round(pipe.engine, round_id)
    client, experiment_id = pipe.mlflow
    identity = {"round": str(round_id), "dataset": pipe.dataset_id}
    result = adopt_earlier_attempt(client, pipe.settings, experiment_id, identity)
    reference = None
    if result is not None:  # registered before a crash, maybe before it was signed
        sign_version(client, pipe.settings, result.version, result.run_id)
    else:
        # two reads: no moment holds every row twice
        train_rows = listings.training_rows(pipe.engine, round_id)
        test_rows = listings.test_rows(pipe.engine, round_id)
        pipe.test_sets[round_id] = test_rows  # the comparison's test set: the same rows
        fingerprint = training_fingerprint(pipe.settings, train_rows)
        if _reuse_same_training(pipe, r, fingerprint):
            return
        reference = DriftReference.of(train_rows).to_json()
        pipe.say(f"batch {r['batch']}: training on {len(train_rows)} rows")
        batches = ",".join(str(b) for b in sorted(set(train_rows["batch"].astype(int))))

        def started(run_id: str) -> None:
            with pipe.engine.begin() as conn:
                update_round(conn, round_id, run_id=run_id)
            checkpoint("run_started", r["batch"])

        result = train_and_register(
            client,
            pipe.settings,
            experiment_id,
            train=train_rows,
            test=test_rows,
            tags={**identity, "batch": str(r["batch"]), "batches": batches, FINGERPRINT_TAG: fingerprint},
            run_name=f"batch-{r['batch']}",
            on_run_started=started,
            before_register=lambda: _still_the_writer(pipe),
            audit={
                "validation": r["validation"],
                "triggers": (r["decision"] or {}).get("fired", []),
                "why": decision_text(r["decision"]),
            },
        )
    training = {
        "outcome": "trained" if reference is not None else "adopted",  # adopted: registered before a crash
        "version": result.version,
        "run_id": result.run_id,
        "metrics": result.metrics,
        "rows_train": result.rows_train,
        "rows_test": result.rows_test,
    }
    with pipe.engine.begin() as conn:
        if reference is not None:  # the drift reference of this version, should it become champion
            meta.set_drift_reference(conn, round_id, reference)
        update_round(
            conn,
            round_id,
            state="trained",
            version=result.version,
            rmse=result.metrics["rmse"],
            run_id=result.run_id,
            training=training,
        )
    checkpoint("trained", r["batch"])


def _still_the_writer(pipe: Pipeline) -> None:
    """LockLost unless this run still holds the writer lock (checked before writing to MLflow,
    which no data DB transaction covers)."""
    from mlops_cli.store.rounds import check_fence

    with pipe.engine.begin() as conn:
        check_fence(conn)


FINGERPRINT_TAG = "train_fingerprint"


def training_fingerprint(settings: Settings, train_rows: pd.DataFrame) -> str:
    """What a version was fitted from: the model setting and its training rows, whatever their
    order (a digest of their row hashes)."""
    import numpy as np

    digest = hashlib.sha256(f"{settings.model}|{settings.max_categories}|".encode())
    digest.update(np.sort(train_rows["row_hash"].to_numpy(dtype="int64")).tobytes())
    return digest.hexdigest()[:32]


def _reuse_same_training(pipe: Pipeline, r: dict[str, Any], fingerprint: str) -> bool:
    """When a registered version was fitted from exactly this (e.g. `--restart` over the same
    data), register no copy: the champion itself ends the round, another version is compared
    with the champion in place of a new one. False when there is none."""
    from mlops_cli.registry.client import alias_version

    settings = pipe.settings
    query = f"name='{settings.model_name}' and tags.{FINGERPRINT_TAG} = '{fingerprint}'"
    same = max(pipe.client.search_model_versions(query), key=lambda mv: int(mv.version), default=None)
    if same is None:
        return False
    champion = alias_version(pipe.client, settings, settings.champion_alias)
    with pipe.engine.begin() as conn:
        training = {"version": int(same.version), "run_id": same.run_id, "fingerprint": fingerprint}
        if champion is not None and champion.version == same.version:
            update_round(conn, r["id"], state="compared", promoted=False, training={"outcome": "unchanged", **training})
        else:
            rmse = float(same.tags["rmse"]) if "rmse" in (same.tags or {}) else None
            reused = {"version": int(same.version), "rmse": rmse, "run_id": same.run_id}
            update_round(conn, r["id"], state="trained", training={"outcome": "reused", **training}, **reused)
    return True


def compare(pipe: Pipeline, round_id: int) -> None:
    """``trained`` → ``compared``: the new version, as challenger, against the champion on the same
    test set; a promotion is recorded (the alias moves in :func:`finish`)."""
    from mlops_cli.pipeline.promote import compare as compare_versions
    from mlops_cli.pipeline.promote import current_test_set, record

    r = get_round(pipe.engine, round_id)
    version, settings = r["version"], pipe.settings
    pipe.say(f"batch {r['batch']}: comparing v{version} with the champion")
    champion = pipe.registry.alias_version(settings.champion_alias)
    if champion is not None and int(champion.version) != version:
        pipe.registry.set_alias(settings.challenger_alias, version)
    test = pipe.test_sets.pop(round_id, None)
    if test is None:  # not trained by this process (another task, or before a crash)
        test = current_test_set(pipe.engine, up_to_round=round_id)
    result = compare_versions(pipe.registry, settings, version, test, engine=pipe.engine)
    with pipe.engine.begin() as conn:
        if result.promoted:
            record(conn, settings, result, pipe.actor, round_id=round_id)
        update_round(conn, round_id, state="compared", promoted=result.promoted, promotion=result.record())
    checkpoint("compared", r["batch"])


def finish(pipe: Pipeline, round_id: int) -> None:
    """→ ``done``: a recorded promotion applied to the registry (again, if a crash came between),
    the inference API asked to reload, the champion after this round noted."""
    from mlops_cli.pipeline.promote import move_champion, request_reload
    from mlops_cli.pipeline.records import full_reason

    r = get_round(pipe.engine, round_id)
    settings = pipe.settings
    if r["promoted"]:
        why = full_reason(r["decision"], r["training"], r["promotion"])
        move_champion(pipe.registry, settings, r["version"], pipe.actor, why)
        checkpoint("alias_moved", r["batch"])
        if pipe.reload_api:
            warning = request_reload(settings)
            if warning:
                pipe.warnings.append(warning)
    champion = pipe.registry.alias_version(settings.champion_alias)
    with pipe.engine.begin() as conn:
        update_round(
            conn,
            round_id,
            state="done",
            champion_version=int(champion.version) if champion else None,
            finished_at=now(),
        )
    checkpoint("done", r["batch"])


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


# --- reports --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class RunReport:
    batches: list[BatchRecord]
    skipped_batches: list[int] = field(default_factory=list)
    # why the run ended: exhausted | repeating (--no-wait) | waited (MLOPS_DATA_MAX_WAIT) | batch (--batch N)
    end: str = "exhausted"
    message: str | None = None
    warnings: list[str] = field(default_factory=list)
    source: str | None = None  # what the run read (MLOPS_DATA_SOURCE's form)
    followed: bool = False  # no source named: the dataset's own was taken

    def to_dict(self) -> dict[str, Any]:
        return {
            "batches": [b.summary() for b in self.batches],
            "skipped_batches": self.skipped_batches,
            "end": self.end,
            "message": self.message,
            "warnings": self.warnings,
            "source": self.source,
            "followed_dataset_source": self.followed,
        }


def _batch_report(rounds: list[dict[str, Any]]) -> BatchRecord:
    """One batch number's record over its rounds: counts summed, the audit record of the last
    round that decided (sentences rendered from it), the latest version trained."""
    from mlops_cli.pipeline.records import full_reason

    decided = [r for r in rounds if r["decision"]]
    last = (decided or rounds)[-1]
    trained = [r for r in rounds if r["version"] is not None]
    dropped: dict[str, int] = {}
    for r in rounds:
        for reason, count in (r["dropped"] or {}).items():
            dropped[reason] = dropped.get(reason, 0) + count
    states = [r["state"] for r in rounds]
    reason = full_reason(last["decision"], last["training"], last["promotion"]) or last["error"] or ""
    if not reason and states[-1] == "duplicate":
        reason = "the answer repeated rows already stored"
    if not reason and states[-1] == "skipped":
        reason = "the source never served this batch number"
    training, promotion = last["training"] or {}, last["promotion"] or {}
    return BatchRecord(
        batch=rounds[0]["batch"],
        state="done" if "done" in states else states[-1],
        answers=len(rounds),
        rows_received=sum(r["rows_new"] or 0 for r in rounds),
        rows_kept=sum(r["rows_kept"] or 0 for r in rounds),
        rows_dropped=sum(r["rows_dropped"] or 0 for r in rounds),
        dropped=dropped,
        retrained=any(r["retrained"] for r in rounds),
        reason=reason,
        rmse=trained[-1]["rmse"] if trained else None,
        version=trained[-1]["version"] if trained else None,
        champion_version=next((r["champion_version"] for r in reversed(rounds) if r["champion_version"]), None),
        promoted=any(r["promoted"] for r in rounds),
        drift_score=last["drift_score"],
        new_share=last["new_share"],
        cause=(last["decision"] or {}).get("cause"),
        triggers=(last["decision"] or {}).get("fired", []),
        outcome=training.get("outcome")
        if training.get("outcome") in ("reused", "unchanged") and not promotion
        else promotion.get("outcome"),
        deltas=promotion.get("deltas"),
        validation=last["validation"],
        champion_on_batch=last["champion_on_batch"],
        decision=last["decision"],
        training=last["training"],
        promotion=last["promotion"],
        mlflow={"run_id": last["run_id"], "version": last["version"]} if last["run_id"] or last["version"] else None,
    )


def report_rounds(engine: Engine, ids: list[int], **extra: Any) -> RunReport:
    """Rounds processed by a run → one report per batch number (skipped numbers listed apart)."""
    if not ids:
        return RunReport(batches=[], **extra)
    rounds = rounds_of(engine, ids)
    by_batch: dict[int, list[dict[str, Any]]] = {}
    skipped: list[int] = []
    for r in rounds:
        if r["state"] == "skipped":
            skipped.append(r["batch"])
        else:
            by_batch.setdefault(r["batch"], []).append(r)
    return RunReport(batches=[_batch_report(v) for v in by_batch.values()], skipped_batches=skipped, **extra)


def all_batches(engine: Engine) -> RunReport:
    """Every batch of the dataset, summarised over all its rounds (the UI's and `batches` view)."""
    return report_rounds(engine, round_ids(engine), end="", message=None)


# --- orchestrator tasks: settings from the environment, ids in and out ----------------------------

# How long an orchestrator task queues behind another writer before failing (and being retried).
TASK_LOCK_WAIT = 60.0


def age_out_events(pipe: Pipeline) -> int:
    """The loop's housekeeping: delete inference events older than MLOPS_API_EVENTS_RETENTION_DAYS
    (0 keeps them all); the number deleted."""
    from datetime import timedelta

    from mlops_cli.store.events import delete_events_before
    from mlops_cli.store.tables import now

    days = pipe.settings.api_events_retention_days
    return delete_events_before(pipe.engine, now() - timedelta(days=days)) if days > 0 else 0


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


def advance(pipe: Pipeline, round_id: int, target: str) -> dict[str, Any]:
    """Run the round's steps until its state reaches ``target`` (or a final state)."""
    while True:
        r = get_round(pipe.engine, round_id)
        if r["state"] in FINAL_STATES or ORDER.index(r["state"]) >= ORDER.index(target):
            return r
        _step(pipe, r)


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
    record = _batch_report([get_round(pipe.engine, round_id)])
    print(f"batch {record.batch}: {record.reason}")
    return {"round": round_id, **record.summary()}
