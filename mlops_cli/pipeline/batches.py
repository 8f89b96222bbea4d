"""`mlops batches list|show`: the batch log as the engine wrote it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_cli.pipeline.records import BatchRecord
from mlops_cli.pipeline.reports import RunReport, all_batches, batch_record
from mlops_cli.store.db import engine_for
from mlops_cli.store.rounds import rounds_of_batch

if TYPE_CHECKING:
    from mlops_cli.config import Settings


def summaries(settings: Settings) -> RunReport:
    """Every batch of the dataset, one summary each over all its rounds."""
    return all_batches(engine_for(settings))


def rounds(settings: Settings, batch: int) -> list[dict[str, Any]]:
    """Every round (answer) of batch ``batch`` as stored in the batch log, oldest first."""
    return rounds_of_batch(engine_for(settings), batch)


def record(settings: Settings, batch: int) -> tuple[BatchRecord | None, list[dict[str, Any]]]:
    """Batch ``batch``'s record (None when the log has no such batch) and its rounds, oldest first."""
    found = rounds(settings, batch)
    return (batch_record(found) if found else None), found
