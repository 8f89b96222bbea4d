"""Bulk frame I/O on the data DB's tables: PostgreSQL is written with ``COPY``, other databases
with one driver-level ``executemany``; reads come straight from the driver's cursor."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, Table, func, insert, select

from mlops_cli.schema import CLEAN_COLUMNS

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Connection, Engine


def row_hashes(frame: pd.DataFrame) -> Any:
    """The content hash of each row's listing columns, as stored in ``clean_data.row_hash``."""
    import pandas as pd

    return pd.util.hash_pandas_object(frame[CLEAN_COLUMNS], index=False).to_numpy().view("int64")


def _tuples(frame: pd.DataFrame) -> list[tuple]:
    """The frame's rows as tuples of Python values, missing values as None (what every driver's
    ``executemany`` takes without a per-value conversion of its own)."""
    columns = [frame[name].to_numpy(dtype=object, na_value=None) for name in frame.columns]
    return list(zip(*columns, strict=True))


def _copy_postgres(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """Bulk load with COPY ... FROM STDIN (CSV): the fast path measured in bench/ingest.py.

    Arrow writes the CSV (4x faster than pandas here): nulls become unquoted empty
    fields, which COPY reads as NULL, while text is always quoted.
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    buffer = io.BytesIO()
    table_data = pa.Table.from_pandas(frame, preserve_index=False)
    pa_csv.write_csv(table_data, buffer, write_options=pa_csv.WriteOptions(include_header=False))
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    driver_conn = conn.connection.driver_connection
    with driver_conn.cursor() as cursor:
        with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN WITH (FORMAT csv)') as copy:
            copy.write(buffer.getvalue())


def insert_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """Append ``frame``'s rows to ``table`` in the connection's transaction, by the fastest route
    of its driver: COPY on PostgreSQL; elsewhere one driver-level ``executemany`` of plain tuples
    (SQLite runs it in C; PyMySQL folds it into multi-row INSERTs), 3x faster than SQLAlchemy's
    insert of dicts."""
    if frame.empty:
        return
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        _copy_postgres(conn, table, frame)
        return
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(conn.dialect.paramstyle)
    if marker is None:  # a driver with another parameter style: SQLAlchemy's generic route
        conn.execute(insert(table), [dict(zip(frame.columns, row, strict=True)) for row in _tuples(frame)])
        return
    quote = conn.dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in frame.columns)}) "
        f"VALUES ({', '.join([marker] * len(frame.columns))})"
    )
    conn.exec_driver_sql(sql, _tuples(frame))  # through SQLAlchemy: its events and error types


# Rows a read turns into a frame at a time: the driver's rows are a Python tuple and objects per
# value (~0.5 KB a row, nine times the frame they become), so a whole read of 1.8 M training rows
# peaked at 1.67 GB; 100k at a time, joined, 0.54 GB (same frame, no slower; measured).
READ_CHUNK = 100_000


def _joined(parts: list[pd.DataFrame], names: list[str]) -> pd.DataFrame:
    """``parts`` as one frame with the dtypes one ``from_records`` of all their rows would infer:
    where the parts disagree (a part whose column is all NULL), the column is inferred again."""
    import pandas as pd

    if len(parts) <= 1:
        return parts[0] if parts else pd.DataFrame.from_records([], columns=names, coerce_float=True)
    frame = pd.concat(parts, ignore_index=True)
    for name in names:
        if len({str(part[name].dtype) for part in parts}) > 1:
            values = [(v,) for v in frame[name].astype(object).where(frame[name].notna(), None)]
            frame[name] = pd.DataFrame.from_records(values, columns=[name], coerce_float=True)[name]
    return frame


def read_table(
    bind: Engine | Connection, table: Table, where: Any = None, columns: list[str] | None = None
) -> pd.DataFrame:
    """Rows of ``table`` (optionally filtered, optionally only ``columns``) as a frame, float
    columns as float64.

    The rows come straight from the driver's cursor as tuples, without SQLAlchemy's row objects:
    for the data tables (numbers and text) the driver's values are already the right ones, and
    this is 3-4x faster on a million rows.
    """
    import pandas as pd
    from sqlalchemy.engine import Engine

    chosen = [table.c[name] for name in columns] if columns else list(table.columns)
    query = select(*chosen) if where is None else select(*chosen).where(where)
    names = [c.name for c in chosen]

    def fetch(conn: Connection) -> pd.DataFrame:
        cursor = conn.execute(query).cursor
        parts = []
        while rows := cursor.fetchmany(READ_CHUNK):
            parts.append(pd.DataFrame.from_records(rows, columns=names, coerce_float=True))
            del rows
        return _joined(parts, names)

    if isinstance(bind, Engine):
        with bind.connect() as conn:
            frame = fetch(conn)
    else:
        frame = fetch(bind)
    for col in chosen:
        if isinstance(col.type, Float):
            frame[col.name] = pd.to_numeric(frame[col.name], errors="coerce").astype("float64")
    return frame


def as_read(table: Table, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (rows just inserted into ``table``) as :func:`read_table` would give them back:
    the same dtypes and values (floats as float64, text as ``str`` with missing as NaN, integers
    as int64), in insertion order — without the read (1.3 s for a 220k-row batch here).

    Every backend gives the inserted values back exactly (tested on SQLite, PostgreSQL and
    MariaDB), but for the sign of -0.0 (SQLite, MySQL), which no hash or rule tells apart."""
    import pandas as pd

    columns = {}
    for col in table.columns:
        values = frame[col.name].reset_index(drop=True)
        if isinstance(col.type, Float):
            columns[col.name] = values.astype("float64")
        elif col.type.python_type is str:
            # read_table infers ``str`` from the values; a column with none is left ``object``
            columns[col.name] = values.astype("str") if values.notna().any() else values.astype(object)
        else:
            columns[col.name] = values.astype("int64")
    return pd.DataFrame(columns)


def _mappings(bind: Engine | Connection, query: Any) -> list[Any]:
    """Run ``query`` on a connection, or on a fresh one of an engine."""
    from sqlalchemy.engine import Engine

    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return list(conn.execute(query).mappings().all())
    return list(bind.execute(query).mappings().all())


def count_rows(engine: Engine, table: Table, where: Any = None) -> int:
    query = select(func.count()).select_from(table)
    if where is not None:
        query = query.where(where)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
