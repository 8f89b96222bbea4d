"""The loop's steps as orchestrator tasks: ids in, ids out (Airflow's XCom carries only these).

Each function builds its own settings from the environment, so a worker needs nothing but
``MLOPS_*`` variables. The local runner (`loop.py`) strings the same steps together in-process.
"""

from __future__ import annotations

from typing import Any

from mlops_cli.settings import Settings, load_settings


def _settings() -> Settings:
    return load_settings()


def ingest_step(batch: int | None = None) -> dict[str, Any]:
    """Fetch and store the next batch (or ``batch``). Raises SourceExhausted after the last."""
    from mlops_cli.ingest import ingest_batch
    from mlops_cli.loop import next_local_batch
    from mlops_cli.sources import IndexedSource, open_source
    from mlops_cli.storage import engine_for

    settings = _settings()
    source = open_source(settings)
    engine = engine_for(settings)
    if isinstance(source, IndexedSource) and batch is None:
        source.cursor = next_local_batch(engine)
    result = ingest_batch(settings, source, batch, engine)
    return {"batch": result.batch, "rows_received": result.rows_received}


def clean_step(batch: int) -> dict[str, Any]:
    from mlops_cli.clean import clean_and_split

    result = clean_and_split(_settings(), batch)
    return {"batch": batch, "rows_kept": result.rows_kept, "rows_dropped": result.rows_dropped}


def decide_step(batch: int) -> dict[str, Any]:
    from mlops_cli.decide import decide_retrain
    from mlops_cli.loop import champion_batches

    settings = _settings()
    decision = decide_retrain(settings, batch, champion_batches=champion_batches(settings))
    return {"batch": batch, "retrain": decision.retrain, "reason": decision.reason}


def train_step(batch: int) -> dict[str, Any]:
    from mlops_cli.storage import engine_for, upsert_batch_log
    from mlops_cli.train import train_model

    settings = _settings()
    trained = train_model(settings, batch)
    upsert_batch_log(engine_for(settings), batch, version=trained.version, rmse=trained.metrics["rmse"])
    return {"batch": batch, "version": trained.version, "rmse": trained.metrics["rmse"]}


def promote_step(batch: int, version: int) -> dict[str, Any]:
    from mlops_cli.promote import promote_if_better
    from mlops_cli.storage import batch_log_rows, engine_for, upsert_batch_log

    settings = _settings()
    engine = engine_for(settings)
    result = promote_if_better(settings, version, engine, up_to_batch=batch, who="airflow")
    reason = next((r["reason"] for r in batch_log_rows(engine) if r["batch"] == batch), "") or ""
    upsert_batch_log(
        engine, batch, champion_version=result.champion_version, reason=f"{reason}; {result.outcome}"[:255]
    )
    return {"batch": batch, "version": version, "promoted": result.promoted, "champion": result.champion_version}


def record_champion_step(batch: int) -> dict[str, Any]:
    """For a batch that did not retrain: note which version is champion after it."""
    from mlops_cli.registry import alias_state
    from mlops_cli.storage import engine_for, upsert_batch_log

    settings = _settings()
    champion = alias_state(settings).champion
    upsert_batch_log(engine_for(settings), batch, champion_version=champion)
    return {"batch": batch, "champion": champion}


def reload_step() -> str | None:
    """Ask the inference API to load the champion; a warning (not a failure) when it is away."""
    from mlops_cli.promote import request_reload

    return request_reload(_settings())
