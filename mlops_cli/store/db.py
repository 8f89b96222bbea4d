"""Opening the data DB: one cached engine per URL, tables created, the schema version checked
(an older layout is upgraded where it can be, refused with a hint where it cannot)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete

from mlops_cli.errors import StorageError
from mlops_cli.store.frames import insert_frame, read_table, row_hashes
from mlops_cli.store.meta import get_meta, set_meta
from mlops_cli.store.tables import SCHEMA_VERSION, clean_data, metadata

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from mlops_cli.config import Settings

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
        if engine.dialect.name == "sqlite":
            _write_ahead(engine)
        metadata.create_all(engine)
        _check_schema(engine)
    except (SQLAlchemyError, ImportError) as exc:
        raise StorageError(
            f"cannot open the data DB ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
            hint="check MLOPS_DATA_DB_URL and that the database server is running",
        ) from None
    _engines[url] = engine
    return engine


def _write_ahead(engine: Engine) -> None:
    """SQLite's write-ahead log on the embedded data DB: with the default rollback journal a read
    under way (a retrain reading its rows, the UI, `mlops events export`) held every writer's
    commit — the API's inference events waited up to the driver's 5 s and were dropped. Readers
    and the writer no longer wait for each other; writers still take turns, and each commit is
    still synced to disk (``synchronous`` stays FULL). The mode is kept in the file: asked on
    every connection, it costs a read once set, and a first switch that finds the file busy is
    tried again on the next connection."""
    import sqlite3

    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        try:
            dbapi_connection.execute("PRAGMA journal_mode=WAL").fetchall()
        except sqlite3.OperationalError:  # another connection holds the file: the next one switches it
            pass


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
    _add_new_columns(engine)
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


def _add_new_columns(engine: Engine) -> None:
    """Schema 3 → 4 → 5: the round's audit record, the promotion's rule (4) and raw_data's extra
    values (5) are new, nullable columns; older rows keep theirs empty (read as "not recorded")."""
    from sqlalchemy import inspect, text

    inspector = inspect(engine)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))


def is_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the data DB (SQLAlchemy's or its driver's), for callers
    that turn it into one line without importing SQLAlchemy."""
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(exc, SQLAlchemyError)


def is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` is the data DB's connection dropping (a server restart, a terminated
    backend, a network cut): a transient fault, retried by the loop."""
    from sqlalchemy.exc import DBAPIError

    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def describe(engine: Engine) -> str:
    """The data DB in words, without host or credentials: "the PostgreSQL data DB 'mlops'"."""
    names = {"postgresql": "PostgreSQL", "mysql": "MySQL", "mariadb": "MariaDB", "sqlite": "SQLite"}
    return f"the {names.get(engine.dialect.name, engine.dialect.name)} data DB '{engine.url.database or ''}'"
