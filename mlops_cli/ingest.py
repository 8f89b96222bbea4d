"""Step 1: fetch a batch from the source, coerce and normalise it, store it in ``raw_data``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_cli.schema import rows_to_frame
from mlops_cli.storage import engine_for, now, raw_data, replace_batch

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from mlops_cli.settings import Settings
    from mlops_cli.sources import DataSource


@dataclass
class IngestResult:
    batch: int
    rows_received: int
    source: str


def ingest_batch(
    settings: Settings, source: DataSource, batch: int | None = None, engine: Engine | None = None
) -> IngestResult:
    """Fetch batch ``batch`` (or the source's next one) and store it as received.

    Batch 0 starts a fresh dataset. The batch is validated before the data DB is touched,
    so a malformed batch (:class:`MalformedBatchError`) leaves stored data as it was;
    an exhausted source raises :class:`SourceExhausted`.
    """
    fetched = source.fetch(batch)
    frame = rows_to_frame(fetched.rows, what=f"batch {fetched.number} from {source.name}")
    engine = engine or engine_for(settings)
    log = {"processed_at": now(), "source": source.name[:255], "rows_received": len(frame)}
    replace_batch(engine, raw_data, fetched.number, frame, log=log, fresh_dataset=fetched.number == 0)
    return IngestResult(fetched.number, len(frame), source.name)
