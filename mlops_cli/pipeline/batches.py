"""`mlops batches list|show`: the batch log as the engine wrote it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mlops_cli.pipeline.engine import RunReport, all_batches
from mlops_cli.pipeline.storage import batch_log, engine_for

if TYPE_CHECKING:
    from mlops_cli.config import Settings


def summaries(settings: Settings) -> RunReport:
    """Every batch of the dataset, one summary each over all its rounds."""
    return all_batches(engine_for(settings))


def rounds(settings: Settings, batch: int) -> list[dict[str, Any]]:
    """Every round (answer) of batch ``batch`` as stored in the batch log, oldest first."""
    with engine_for(settings).connect() as conn:
        rows = conn.execute(select(batch_log).where(batch_log.c.batch == batch).order_by(batch_log.c.id))
        return [dict(r) for r in rows.mappings()]
