"""The closed loop for one batch: ingest → clean+split → decide → train → promote → reload.

Each arrow is a step function; this module only strings them together for the local
runner (`mlops train`). Airflow calls the same steps, one per task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import SourceExhausted

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from mlops_cli.settings import Settings
    from mlops_cli.sources import DataSource

Progress = Callable[[str], None]


@dataclass
class BatchReport:
    batch: int
    rows_received: int
    rows_kept: int
    rows_dropped: int
    dropped: dict[str, int]
    retrained: bool
    reason: str
    rmse: float | None
    version: int | None
    champion_version: int | None
    promoted: bool = False
    drift_score: float | None = None
    new_share: float | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunReport:
    batches: list[BatchReport]
    exhausted: str | None = None  # the source's words when it ran out of batches


def champion_batches(settings: Settings) -> list[int] | None:
    """The batches the champion was trained on, or None when there is no champion."""
    from mlops_cli.registry import alias_version, configure, version_info

    client = configure(settings)
    champion = alias_version(client, settings, settings.champion_alias)
    return None if champion is None else version_info(client, settings, champion)["batches"]


def process_batch(
    settings: Settings,
    source: DataSource,
    batch: int | None = None,
    engine: Engine | None = None,
    progress: Progress | None = None,
    reload_api: bool = True,
) -> BatchReport:
    """Run one batch through every step. Raises SourceExhausted when there is none left."""
    from mlops_cli.clean import clean_and_split
    from mlops_cli.decide import decide_retrain
    from mlops_cli.ingest import ingest_batch
    from mlops_cli.promote import promote_if_better, request_reload
    from mlops_cli.registry import alias_state
    from mlops_cli.storage import engine_for, upsert_batch_log
    from mlops_cli.train import train_model

    def step(text: str) -> None:
        if progress:
            progress(text)

    engine = engine or engine_for(settings)
    step("fetching" if batch is None else f"fetching batch {batch}")
    ingested = ingest_batch(settings, source, batch, engine)
    number = ingested.batch
    step(f"batch {number}: cleaning {ingested.rows_received} rows")
    cleaned = clean_and_split(settings, number, engine)
    step(f"batch {number}: deciding")
    decision = decide_retrain(settings, number, engine, champion_batches(settings))
    report = BatchReport(
        number,
        cleaned.rows_received,
        cleaned.rows_kept,
        cleaned.rows_dropped,
        cleaned.dropped,
        decision.retrain,
        decision.reason,
        None,
        None,
        None,
        drift_score=decision.drift_score,
        new_share=decision.new_share,
    )
    if decision.retrain:
        step(f"batch {number}: training on {decision.total_rows} rows")
        trained = train_model(settings, number, engine)
        report.version, report.rmse = trained.version, trained.metrics["rmse"]
        step(f"batch {number}: comparing v{trained.version} with the champion")
        result = promote_if_better(settings, trained.version, engine, up_to_batch=number, who="pipeline")
        report.promoted = result.promoted
        report.reason += f"; {result.outcome}"
        if result.promoted and reload_api:
            warning = request_reload(settings)
            if warning:
                report.warnings.append(warning)
    report.champion_version = alias_state(settings).champion
    upsert_batch_log(
        engine,
        number,
        version=report.version,
        rmse=report.rmse,
        champion_version=report.champion_version,
        reason=report.reason[:255],
    )
    return report


def next_local_batch(engine: Engine) -> int:
    """For sources without a server-side cursor: the batch after the last one stored."""
    from sqlalchemy import func, select

    from mlops_cli.storage import batch_log

    with engine.connect() as conn:
        last = conn.execute(select(func.max(batch_log.c.batch))).scalar()
    return 0 if last is None else int(last) + 1


def run_batches(
    settings: Settings,
    batch: int | None = None,
    restart: bool = False,
    progress: Progress | None = None,
    reload_api: bool = True,
) -> RunReport:
    """``batch`` given: that batch only. Otherwise every remaining batch until the source is exhausted."""
    from mlops_cli.sources import IndexedSource, open_source
    from mlops_cli.storage import engine_for

    source = open_source(settings)
    engine = engine_for(settings)
    if batch is not None:
        try:
            return RunReport([process_batch(settings, source, batch, engine, progress, reload_api)])
        except SourceExhausted as done:
            return RunReport([], done.detail)
    if restart:
        source.restart()
    if isinstance(source, IndexedSource) and not restart:
        source.cursor = next_local_batch(engine)
    reports: list[BatchReport] = []
    while True:
        try:
            reports.append(process_batch(settings, source, None, engine, progress, reload_api))
        except SourceExhausted as done:
            return RunReport(reports, done.detail)
