"""The steps that judge an answer before anything is decided, each its own state and, in the
DAG, its own task::

    stored → schema_checked → quality_checked → cleaned → validated

- :func:`check_schema`: the columns received against the contract and the dataset's first answer.
- :func:`check_quality`: nulls, duplicates, values out of range, the target's consistency — the
  cleaning rules' verdict on the round's raw rows, counted.
- :func:`clean`: the rows that passed, written to ``clean_data`` with their split.
- :func:`validate`: the champion priced on the new rows, categories it never saw, drift per
  feature, volume and sufficiency.

Each writes its part of the round's validation report and the next state in one transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_cli.faults import checkpoint
from mlops_cli.pipeline.context import COUNTED, Checked, SeenHashes, with_parts
from mlops_cli.store import listings, meta
from mlops_cli.store.rounds import counted_rounds, get_round, update_round

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Connection

    from mlops_cli.pipeline.clean import CleanResult
    from mlops_cli.pipeline.context import Pipeline
    from mlops_cli.pipeline.decide import DriftReference


def check_schema(pipe: Pipeline, round_id: int) -> None:
    """``stored`` → ``schema_checked``: the columns the answer arrived with (recorded when it was
    stored) judged against the contract and against the dataset's first answer — new, missing,
    numbers sent as text — and how each was handled. The first answer's columns become the
    reference of every later one."""
    from mlops_cli.pipeline.ingest import schema_report

    r = get_round(pipe.engine, round_id)
    pipe.say(f"batch {r['batch']}: checking the schema")
    received = (r["validation"] or {}).get("schema") or {}
    with pipe.engine.begin() as conn:
        first = meta.first_schema(conn)
        if first is None and received:
            meta.set_first_schema(conn, {k: received[k] for k in ("received", "numbers_as_text")})
        schema = schema_report(received, None if first is None else first["received"])
        update_round(conn, round_id, state="schema_checked", validation=with_parts(r, schema=schema))
    checkpoint("schema_checked", r["batch"])


def check_quality(pipe: Pipeline, round_id: int) -> None:
    """``schema_checked`` → ``quality_checked``: every cleaning rule applied to the round's raw
    rows (duplicates against every clean row so far included), counted per column and rule as
    the report's quality part. The verdict goes to :func:`clean` in memory; another process
    computes it again from the same rows."""
    from mlops_cli.pipeline.clean import quality_report

    r = get_round(pipe.engine, round_id)
    pipe.say(f"batch {r['batch']}: checking the quality of {r['rows_new']} rows")
    with pipe.engine.begin() as conn:
        checked = _check(pipe, conn, r)
        update_round(
            conn, round_id, state="quality_checked", validation=with_parts(r, quality=quality_report(checked.result))
        )
    pipe.checked[round_id] = checked
    checkpoint("quality_checked", r["batch"])


def _check(pipe: Pipeline, conn: Connection, r: dict[str, Any]) -> Checked:
    """The cleaning rules' verdict on round ``r``'s raw rows (those store handed over, else read)."""
    from mlops_cli.pipeline.clean import clean_rows

    part = pipe.stored.pop(r["id"], None)  # None: stored by another process (a crash, a task)
    if part is None:
        part = listings.raw_rows_of_round(conn, r["batch"], r["id"])
    seen = seen_hashes(pipe, conn, r["id"])
    settings = pipe.settings
    result: CleanResult = clean_rows(part, seen.values, settings.test_size, settings.split_seed + r["batch"])
    return Checked(result=result, seen=seen)


def clean(pipe: Pipeline, round_id: int) -> None:
    """``quality_checked`` → ``cleaned``: the round's valid, new rows in ``clean_data``, with their
    split (the quality check's verdict; the same rules on the same rows when run apart)."""
    import numpy as np

    r = get_round(pipe.engine, round_id)
    pipe.say(f"batch {r['batch']}: cleaning {r['rows_new']} rows")
    with pipe.engine.begin() as conn:
        checked = pipe.checked.pop(round_id, None) or _check(pipe, conn, r)
        result, seen = checked.result, checked.seen
        listings.replace_clean_rows(conn, round_id, result.kept.assign(batch=r["batch"], round=round_id))
        update_round(
            conn,
            round_id,
            state="cleaned",
            rows_kept=result.rows_kept,
            rows_dropped=result.rows_dropped,
            dropped=result.dropped,
            rows_train=result.rows_train,
            rows_test=result.rows_test,
        )
    if seen.complete:  # committed: later rounds are deduplicated against this one's rows too
        pipe.seen = SeenHashes(upto=round_id, values=np.sort(np.concatenate([seen.values, result.kept["row_hash"]])))
    else:
        pipe.seen = None
    checkpoint("cleaned", r["batch"])


def seen_hashes(pipe: Pipeline, conn: Connection, round_id: int) -> SeenHashes:
    """The hashes of every clean row outside round ``round_id``: the cache plus newer rounds."""
    import numpy as np

    cached = pipe.seen if pipe.seen is not None and pipe.seen.upto < round_id else None
    newer = listings.clean_hashes(conn, besides=round_id, after=None if cached is None else cached.upto)
    values = newer["row_hash"].to_numpy(dtype="int64")
    if cached is not None:
        values = np.concatenate([cached.values, values])
    ahead = bool(len(newer)) and int(newer["round"].max()) > round_id
    return SeenHashes(upto=round_id - 1, values=np.sort(values), complete=not ahead)


def _champion(pipe: Pipeline) -> dict[str, Any] | None:
    from mlops_cli.registry.client import alias_version, version_info

    champion = alias_version(pipe.client, pipe.settings, pipe.settings.champion_alias)
    return None if champion is None else version_info(pipe.client, pipe.settings, champion, aliases={})


def _drift_reference(conn: Connection, pipe: Pipeline, champion: dict[str, Any], round_id: int) -> DriftReference:
    """The champion's training rows, summarised (stored when it was trained; computed and stored
    here otherwise); when it was trained on another dataset, the rows before this round."""
    from mlops_cli.pipeline.decide import DRIFT_COLUMNS, DriftReference

    if champion.get("dataset") == pipe.dataset_id and champion.get("round") is not None:
        stored = meta.drift_reference(conn, champion["round"])
        known = None if stored is None else DriftReference.from_json(stored)
        if known is not None:
            return known
        reference = DriftReference.of(listings.training_rows(conn, champion["round"], columns=DRIFT_COLUMNS))
        meta.set_drift_reference(conn, champion["round"], reference.to_json())
        return reference
    return DriftReference.of(listings.rows_before(conn, round_id, DRIFT_COLUMNS))


def validate(pipe: Pipeline, round_id: int) -> None:
    """``cleaned`` → ``validated``: the rest of the validation report, before anything is decided.

    First the champion prices this round's clean rows (new to it, with true prices): its error
    there, against its own test error, is the "how is production doing" record. Then the
    categories its encoders never saw, drift per feature against its training data, volume and
    sufficiency. Reads only this round's rows, the round counts and the champion's stored drift
    summary: its cost follows the batch, not the data so far.
    """
    from mlops_cli.pipeline.decide import drift_report, drift_scores
    from mlops_cli.schema import CLEAN_COLUMNS

    r = get_round(pipe.engine, round_id)
    pipe.say(f"batch {r['batch']}: validating against the champion")
    champion = _champion(pipe)
    with pipe.engine.connect() as conn:
        current = listings.round_rows(conn, round_id, CLEAN_COLUMNS)
    on_batch, unseen = (None, None) if champion is None or current.empty else _champion_on(pipe, champion, current)
    if on_batch is not None and "error" not in on_batch:  # before the commit: a rerun tags it again
        from mlops_cli.registry.client import tag_batch_check

        tag_batch_check(pipe.client, pipe.settings, on_batch["version"], r["batch"], on_batch)
    with pipe.engine.begin() as conn:
        counted = counted_rounds(conn, round_id, tuple(COUNTED))
        reference = None if champion is None else _drift_reference(conn, pipe, champion, round_id)
        drift = drift_scores(reference, current) if reference is not None and len(current) and reference.rows else {}
        total_rows = sum(row.rows_kept or 0 for row in counted)
        train_rows = sum(row.rows_train or 0 for row in counted)
        validation = with_parts(
            r,
            champion=None if champion is None else champion["version"],  # what the report compares with
            volume={
                "received": r["rows_received"],
                "new": r["rows_new"],
                "kept": r["rows_kept"],
                "share_of_data": round((r["rows_kept"] or 0) / total_rows, 4) if total_rows else 0.0,
            },
            drift=drift_report(pipe.settings, drift),
            new_categories=unseen,
            sufficiency={
                "train_rows": train_rows,
                "test_rows": sum(row.rows_test or 0 for row in counted),
                "minimum": pipe.settings.min_train_rows,
                "sufficient": train_rows >= pipe.settings.min_train_rows,
            },
        )
        update_round(
            conn,
            round_id,
            state="validated",
            drift=drift,
            drift_score=max(drift.values()) if drift else None,
            champion_on_batch=on_batch,
            validation=validation,
        )
    checkpoint("validated", r["batch"])


def _champion_on(
    pipe: Pipeline, champion: dict[str, Any], current: pd.DataFrame
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The champion's metrics on this round's clean rows beside its own test metrics, and the
    categories of these rows its encoders never saw (None when it could not be loaded)."""
    from mlops_cli.errors import MlopsError
    from mlops_cli.pipeline.decide import unseen_categories
    from mlops_cli.registry.scoring import known_categories, load_model, regression_metrics
    from mlops_cli.schema import FEATURES, TARGET

    version = champion["version"]
    try:
        model = load_model(pipe.settings, version)
    except MlopsError as exc:  # refused or unloadable: the API would not serve it either
        return {"version": version, "rows": len(current), "error": exc.message}, None
    scores = regression_metrics(current[TARGET].to_numpy(), model.predict(current[FEATURES]))
    on_batch: dict[str, Any] = {"version": version, "rows": len(current), **scores}
    for metric in ("mae", "rmse"):
        at_test = champion.get(metric)
        on_batch[f"test_{metric}"] = at_test
        on_batch[f"{metric}_change"] = round(scores[metric] / at_test - 1, 4) if at_test else None
    return on_batch, unseen_categories(known_categories(model), current)
