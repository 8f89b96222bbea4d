"""The inference events (raw domain): written in bulk by the API's event writer, read by
`mlops events` and the UI, aged out by the loop."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, insert, select

from mlops_cli.store.tables import inference_events

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# Every column but the key, in the order the writer's tuples give them.
EVENT_COLUMNS = tuple(c.name for c in inference_events.columns if c.name != "id")
ERROR_CHARS = 1000
LISTING_CHARS = 4000  # a refused body is kept as an excerpt this long (a priced listing whole)


def write_events(engine: Engine, rows: Sequence[tuple]) -> None:
    """Append ``rows`` (tuples in EVENT_COLUMNS order) in one transaction: COPY on PostgreSQL,
    one multi-row insert elsewhere."""
    if not rows:
        return
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
            columns = ", ".join(EVENT_COLUMNS)
            with conn.connection.driver_connection.cursor() as cursor:
                with cursor.copy(f"COPY {inference_events.name} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            return
        conn.execute(insert(inference_events), [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in rows])


def _where(since: datetime | None, status: str | None, version: int | None) -> Any:
    """The filter of `mlops events list`: ``status`` is a code ("422"), "ok" (< 400) or "error"."""
    c = inference_events.c
    clauses = []
    if since is not None:
        clauses.append(c.received_at >= since)
    if status == "ok":
        clauses.append(c.status < 400)
    elif status == "error":
        clauses.append(c.status >= 400)
    elif status is not None:
        clauses.append(c.status == int(status))
    if version is not None:
        clauses.append(c.model_version == version)
    return and_(*clauses) if clauses else None


def read_events(
    engine: Engine,
    *,
    since: datetime | None = None,
    status: str | None = None,
    version: int | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Events matching the filter, newest first (the newest ``limit`` of them)."""
    query = select(inference_events).order_by(inference_events.c.id.desc())
    where = _where(since, status, version)
    if where is not None:
        query = query.where(where)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        events = [dict(row) for row in conn.execute(query).mappings()]
    for event in events:  # SQLite and MySQL give back the UTC time without its zone
        if event["received_at"] is not None and event["received_at"].tzinfo is None:
            event["received_at"] = event["received_at"].replace(tzinfo=UTC)
    return events


def iter_events(
    engine: Engine,
    *,
    since: datetime | None = None,
    status: str | None = None,
    version: int | None = None,
    chunk: int = 50_000,
) -> Iterator[list[tuple]]:
    """Every matching event, oldest first, ``chunk`` rows at a time (an export never holds the
    whole table)."""
    where = _where(since, status, version)
    last = 0
    while True:
        query = select(inference_events).where(inference_events.c.id > last)
        if where is not None:
            query = query.where(where)
        with engine.connect() as conn:
            rows = conn.execute(query.order_by(inference_events.c.id).limit(chunk)).all()
        if not rows:
            return
        last = rows[-1][0]
        yield [tuple(row) for row in rows]


def count_events(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(inference_events)).scalar_one())


def delete_events_before(engine: Engine, cutoff: datetime) -> int:
    """Age out events received before ``cutoff``; the number removed."""
    with engine.begin() as conn:
        return conn.execute(delete(inference_events).where(inference_events.c.received_at < cutoff)).rowcount or 0


def export_events(engine: Engine, path: Path, fmt: str, **where: Any) -> int:
    """Write the matching events, oldest first, to ``path`` as CSV or Parquet (typed columns, the
    time in UTC), chunk by chunk; the number written."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    types = {
        "id": pa.int64(),
        "received_at": pa.timestamp("us", tz="UTC"),
        "status": pa.int32(),
        "model_version": pa.int64(),
        "latency_ms": pa.float64(),
        "item": pa.int64(),
        "prediction": pa.float64(),
    }
    schema = pa.schema([(c.name, types.get(c.name, pa.string())) for c in inference_events.columns])
    writer = pq.ParquetWriter(path, schema) if fmt == "parquet" else pa_csv.CSVWriter(path, schema)
    written = 0
    try:
        for rows in iter_events(engine, **where):
            columns = list(zip(*rows, strict=True))
            writer.write_table(
                pa.Table.from_arrays([pa.array(v, f.type) for v, f in zip(columns, schema, strict=True)], schema=schema)
            )
            written += len(rows)
    finally:
        writer.close()
    return written
