"""The inference events (raw domain): written in bulk by the API's event writer, read by
`mlops events` and the UI, aged out by the loop."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, insert, select

from mlops_cli.store.tables import inference_events

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# Every column but the key, in the order the writer's tuples give them.
EVENT_COLUMNS = tuple(c.name for c in inference_events.columns if c.name != "id")
SQLITE_ROWS_PER_INSERT = 1000  # 18 parameters a row: well under SQLite's 32,766 per statement


def write_events(engine: Engine, rows: Sequence[tuple]) -> None:
    """Append ``rows`` (tuples in EVENT_COLUMNS order, times in UTC) in one transaction: COPY on
    PostgreSQL, multi-row INSERTs elsewhere (ours on SQLite; PyMySQL folds a driver-level
    ``executemany`` into them) — 5x faster than SQLAlchemy's insert of dicts."""
    if not rows:
        return
    with engine.begin() as conn:
        dialect = conn.dialect
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            columns = ", ".join(EVENT_COLUMNS)
            with conn.connection.driver_connection.cursor() as cursor:
                with cursor.copy(f"COPY {inference_events.name} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            return
        marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
        if marker is None:  # another driver: SQLAlchemy's generic route
            conn.execute(insert(inference_events), [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in rows])
            return
        # the time as SQLAlchemy stores a DateTime there: SQLite text (always with its microseconds:
        # "…:00" sorted before the "…:00.000000" a query binds), MySQL's zoneless DATETIME
        at = EVENT_COLUMNS.index("received_at")
        as_text = dialect.name == "sqlite"
        insert_into = f"INSERT INTO {inference_events.name} ({', '.join(EVENT_COLUMNS)}) VALUES "
        one = f"({', '.join([marker] * len(EVENT_COLUMNS))})"
        if not as_text:
            rows = [(*row[:at], row[at].replace(tzinfo=None), *row[at + 1 :]) for row in rows]
            conn.exec_driver_sql(insert_into + one, rows)
            return
        # SQLite: multi-row statements (5.5 µs a row in sqlite3 alone, its executemany 6.2), their
        # values flattened in C and the times converted in one slice: 0.7 µs a row, where a tuple
        # rebuilt per row took 2 µs of the event writer's ~10.
        width = len(EVENT_COLUMNS)
        for start in range(0, len(rows), SQLITE_ROWS_PER_INSERT):
            chunk = rows[start : start + SQLITE_ROWS_PER_INSERT]
            values = list(chain.from_iterable(chunk))
            values[at::width] = [t.replace(tzinfo=None).isoformat(" ", "microseconds") for t in values[at::width]]
            conn.exec_driver_sql(insert_into + ", ".join([one] * len(chunk)), tuple(values))


def _where(since: datetime | None, status: str | None, version: int | None, request_id: str | None = None) -> Any:
    """The filter of `mlops events list`: ``status`` is a code ("422"), "ok" (< 400) or "error"."""
    c = inference_events.c
    clauses = []
    if request_id is not None:  # indexed: the id a user reports finds its request at once
        clauses.append(c.request_id == request_id)
    if since is not None:  # SQLite and MySQL compare the UTC time without its zone
        clauses.append(c.received_at >= since.astimezone(UTC))
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
    request_id: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Events matching the filter, newest first (the newest ``limit`` of them)."""
    query = select(inference_events).order_by(inference_events.c.id.desc())
    where = _where(since, status, version, request_id)
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
    request_id: str | None = None,
    chunk: int = 50_000,
) -> Iterator[list[tuple]]:
    """Every matching event, oldest first, ``chunk`` rows at a time (an export never holds the
    whole table)."""
    where = _where(since, status, version, request_id)
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


def answered_listings(
    engine: Engine, *, since: datetime, version: int | None = None, limit: int = 50_000
) -> list[tuple[str | None, float | None, str | None]]:
    """(listing as received, prediction, unseen) of the newest answered listings since ``since``
    (of ``version`` when given): what served-traffic drift is measured on."""
    c = inference_events.c
    query = select(c.listing, c.prediction, c.unseen).where(c.status < 400, c.received_at >= since.astimezone(UTC))
    if version is not None:
        query = query.where(c.model_version == version)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query.order_by(c.id.desc()).limit(limit))]


def shadow_pairs(engine: Engine, served: int, shadow: int) -> list[tuple[str, float, float, float, float]]:
    """(request id, served price, shadow price, request ms, shadow ms) of every listing ``served``
    answered while ``shadow`` priced it in shadow."""
    c = inference_events.c
    query = select(c.request_id, c.prediction, c.shadow_prediction, c.latency_ms, c.shadow_ms).where(
        c.model_version == served, c.shadow_version == shadow, c.shadow_prediction.is_not(None)
    )
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def shadow_requests(engine: Engine, served: int, shadow: int) -> int:
    """How many requests ``served`` answered while ``shadow`` priced them in shadow."""
    c = inference_events.c
    query = select(func.count(func.distinct(c.request_id))).where(
        c.model_version == served, c.shadow_version == shadow, c.shadow_prediction.is_not(None)
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
