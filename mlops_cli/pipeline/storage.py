"""The data DB: ``raw_data``, ``clean_data``, the round log ``batch_log``, the answer bodies,
``promotions`` and a little metadata.

The batch engine (``engine.py``) writes each step's output and the round's new state in one
transaction through these helpers. PostgreSQL is written with ``COPY``; other databases with
one ``executemany``.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.dialects.mysql import LONGBLOB

from mlops_cli.errors import StorageError
from mlops_cli.schema import COLUMNS, FEATURES, NUMERIC, TARGET, TEXT_WIDTH

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Connection, Engine

    from mlops_cli.config import Settings

metadata = MetaData()
# Bumped whenever a table changes shape: an older data DB is refused with a hint, never misread.
SCHEMA_VERSION = "3"
# Answer bodies are stored compressed, in chunks well under MySQL's default max_allowed_packet.
CHUNK_BYTES = 4 * 1024 * 1024

BigBlob = LargeBinary().with_variant(LONGBLOB(), "mysql", "mariadb")


def _listing_columns(names: list[str], text_type: Any) -> list[Column]:
    # Double, not Float: MySQL's FLOAT is single precision and would round prices.
    return [Column(n, Double if n in NUMERIC else text_type) for n in names]


# Rows as received (typed, ids and names normalised), text never truncated: a value too long
# for clean_data is dropped in cleaning with a counted reason, on every backend.
raw_data = Table(
    "raw_data",
    metadata,
    *_listing_columns(COLUMNS, Text()),
    Column("batch", Integer, nullable=False),
    Column("round", Integer, nullable=False),
    Index("ix_raw_data_batch", "batch"),
)
CLEAN_COLUMNS = [TARGET, *FEATURES]
clean_data = Table(
    "clean_data",
    metadata,
    *_listing_columns(CLEAN_COLUMNS, String(TEXT_WIDTH)),
    Column("batch", Integer, nullable=False),
    Column("round", Integer, nullable=False),
    Column("split", String(8), nullable=False),
    # The row's content hash (pandas' hash of the listing columns, as a signed 64-bit value):
    # cleaning deduplicates a new round against this one column instead of every stored row.
    Column("row_hash", BigInteger, nullable=False),
    Index("ix_clean_data_batch", "batch"),
    Index("ix_clean_data_round", "round"),
)
# One row per answer of the source (a *round*): a batch number answered twice has two rounds.
# ``state`` is the round's durable progress, advanced in the same transaction as each step's
# output; a rerun resumes every round that is not in a final state.
batch_log = Table(
    "batch_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch", Integer, nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("received_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("source", String(255)),
    Column("answer_bytes", BigInteger),
    Column("answer_sha256", String(64)),
    Column("rows_received", Integer),
    Column("rows_new", Integer),
    Column("rows_kept", Integer),
    Column("rows_dropped", Integer),
    Column("dropped", JSON),
    Column("rows_train", Integer),
    Column("rows_test", Integer),
    Column("new_rows", Integer),
    Column("total_rows", Integer),
    Column("new_share", Float),
    Column("drift_score", Float),
    Column("drift", JSON),
    Column("retrained", Boolean),
    Column("reason", String(255)),
    Column("run_id", String(64)),
    Column("version", Integer),
    Column("rmse", Float),
    Column("promoted", Boolean),
    Column("champion_version", Integer),
    Column("error", Text),
    sqlite_autoincrement=True,  # round ids are never reused, not even after a --restart
)
# The body of every data API answer, as received (zlib), written before anything else runs.
answer_chunks = Table(
    "answer_chunks",
    metadata,
    Column("round", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("data", BigBlob, nullable=False),
)
promotions = Table(
    "promotions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("model_name", String(128), nullable=False),
    Column("old_version", Integer),
    Column("new_version", Integer, nullable=False),
    Column("old_rmse", Float),
    Column("new_rmse", Float),
    Column("test_rows", Integer),
    Column("note", String(255)),
    Column("round", Integer),  # the pipeline round that decided it (None: manual)
)
# Small facts about the dataset as a whole: schema version, its source, who writes it.
mlops_meta = Table(
    "mlops_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text),
)
DATASET_TABLES = (raw_data, clean_data, batch_log, answer_chunks)


def now() -> datetime:
    return datetime.now(UTC)


_engines: dict[str, Engine] = {}


def engine_for(settings: Settings) -> Engine:
    """A (cached) engine for the data DB, with the tables created if missing."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    url = str(settings.data_db_url)
    if url in _engines:
        return _engines[url]
    if url.startswith("sqlite"):
        settings.ensure_home()
    try:
        engine = create_engine(url, pool_pre_ping=True)
        metadata.create_all(engine)
        _check_schema(engine)
    except (SQLAlchemyError, ImportError) as exc:
        raise StorageError(
            f"cannot open the data DB ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
            hint="check MLOPS_DATA_DB_URL and that the database server is running",
        ) from None
    _engines[url] = engine
    return engine


def _check_schema(engine: Engine) -> None:
    """Refuse a data DB laid out by an older mlops instead of misreading it."""
    from sqlalchemy import inspect

    columns = {c["name"] for c in inspect(engine).get_columns("batch_log")}
    if "state" not in columns:
        raise StorageError(
            "the data DB was written by an older mlops (its batch_log has no round states)",
            hint="move the data DB away (embedded: MLOPS_HOME/data.db) or drop its tables, then train again",
        )
    if "row_hash" not in {c["name"] for c in inspect(engine).get_columns("clean_data")}:
        _add_row_hashes(engine)
    with engine.begin() as conn:
        if get_meta(conn, "schema_version") != SCHEMA_VERSION:
            set_meta(conn, schema_version=SCHEMA_VERSION)


def _add_row_hashes(engine: Engine) -> None:
    """Schema 2 → 3: clean_data gains ``row_hash``. Its rows are rewritten with their hashes in
    one transaction (the table has no key to update them by); nothing else changes."""
    from sqlalchemy import text

    names = [c.name for c in clean_data.columns if c.name != "row_hash"]
    with engine.begin() as conn:
        rows = read_table(conn, clean_data, columns=names)
        conn.execute(text("ALTER TABLE clean_data ADD COLUMN row_hash BIGINT NOT NULL DEFAULT 0"))
        conn.execute(delete(clean_data))
        insert_frame(conn, clean_data, rows.assign(row_hash=row_hashes(rows))[[c.name for c in clean_data.columns]])


def row_hashes(frame: pd.DataFrame) -> Any:
    """The content hash of each row's listing columns, as stored in ``clean_data.row_hash``."""
    import pandas as pd

    return pd.util.hash_pandas_object(frame[CLEAN_COLUMNS], index=False).to_numpy().view("int64")


def get_meta(conn: Connection, key: str) -> str | None:
    return conn.execute(select(mlops_meta.c.value).where(mlops_meta.c.key == key)).scalar()


def set_meta(conn: Connection, **values: str | None) -> None:
    """Create, update or (value None) delete keys of ``mlops_meta``."""
    from sqlalchemy import update

    for key, value in values.items():
        if value is None:
            conn.execute(delete(mlops_meta).where(mlops_meta.c.key == key))
        elif get_meta(conn, key) is None:
            conn.execute(insert(mlops_meta).values(key=key, value=value))
        else:
            conn.execute(update(mlops_meta).where(mlops_meta.c.key == key).values(value=value))


def wipe_dataset(conn: Connection) -> None:
    """Forget every stored row, round and answer body (``--restart``); promotions stay."""
    for table in DATASET_TABLES:
        conn.execute(delete(table))
    conn.execute(delete(mlops_meta).where(mlops_meta.c.key.like("drift_reference:%")))
    conn.execute(delete(mlops_meta).where(mlops_meta.c.key.like("score:%")))


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

    def fetch(conn: Connection) -> list[tuple]:
        return conn.execute(query).cursor.fetchall()

    if isinstance(bind, Engine):
        with bind.connect() as conn:
            rows = fetch(conn)
    else:
        rows = fetch(bind)
    frame = pd.DataFrame.from_records(rows, columns=names, coerce_float=True)
    del rows
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


# --- answer bodies (write-ahead) ---------------------------------------------------------------


def write_body(conn: Connection, round_id: int, body: bytes) -> None:
    import zlib

    packed = zlib.compress(body, 1)  # level 1: ~8x smaller on listings' JSON, at memory speed
    conn.execute(
        insert(answer_chunks),
        [
            {"round": round_id, "seq": seq, "data": packed[start : start + CHUNK_BYTES]}
            for seq, start in enumerate(range(0, max(len(packed), 1), CHUNK_BYTES))
        ],
    )


def read_body(conn: Connection, round_id: int) -> bytes | None:
    import zlib

    chunks = conn.execute(
        select(answer_chunks.c.data).where(answer_chunks.c.round == round_id).order_by(answer_chunks.c.seq)
    ).scalars()
    packed = b"".join(bytes(chunk) for chunk in chunks)
    return zlib.decompress(packed) if packed else None


def drop_body(conn: Connection, round_id: int) -> None:
    conn.execute(delete(answer_chunks).where(answer_chunks.c.round == round_id))


# --- rounds and promotions ---------------------------------------------------------------------


# The fences this process holds, by data DB URL (innermost last): epoch and lock.
_fences: dict[str, list[tuple[int, Any]]] = {}


def check_fence(conn: Connection) -> None:
    """Inside a transaction about to write: raise :class:`LockLost` unless this process still holds
    the data DB's writer lock. The epoch row is read FOR UPDATE, so a writer taking the lock now
    waits for this transaction, and this one sees any epoch taken before it."""
    from mlops_cli.errors import LockLost

    held = _fences.get(str(conn.engine.url))
    if not held:
        return
    epoch, lock = held[-1]
    query = select(mlops_meta.c.value).where(mlops_meta.c.key == "writer_epoch").with_for_update()
    if not lock.holds() or conn.execute(query).scalar() != str(epoch):
        raise LockLost(
            "lost the data DB's writer lock (its connection was dropped): another run may have started; "
            "nothing more was written",
            hint="rerun the same command to resume",
        )


def fences_of(engine: Engine) -> list[tuple[int, Any]]:
    """The writer-lock fences this process holds on ``engine``'s data DB (innermost last)."""
    return _fences.setdefault(str(engine.url), [])


def add_round(conn: Connection, **fields: Any) -> int:
    """Insert a round (one answer of the source); returns its id. Only while this writer holds the lock."""
    check_fence(conn)
    return int(conn.execute(insert(batch_log).values(**fields)).inserted_primary_key[0])


def update_round(conn: Connection, round_id: int, **fields: Any) -> None:
    """Advance a round, inside the step's transaction: only while this writer holds the lock."""
    from sqlalchemy import update

    check_fence(conn)
    conn.execute(update(batch_log).where(batch_log.c.id == round_id).values(**fields))


def get_round(bind: Engine | Connection, round_id: int) -> dict[str, Any]:
    rows = _mappings(bind, select(batch_log).where(batch_log.c.id == round_id))
    if not rows:
        raise StorageError(f"round {round_id} is not in the batch log")
    return dict(rows[0])


def batch_log_rows(engine: Engine) -> list[dict[str, Any]]:
    """Every round, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(batch_log).order_by(batch_log.c.id)).mappings().all()
    return [dict(row) for row in rows]


def record_promotion(conn: Connection, **fields: Any) -> None:
    conn.execute(insert(promotions).values(at=now(), **fields))


def promotion_rows(engine: Engine, model_name: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = (
            conn.execute(select(promotions).where(promotions.c.model_name == model_name).order_by(promotions.c.id))
            .mappings()
            .all()
        )
    return [dict(row) for row in rows]
