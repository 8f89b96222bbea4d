"""The listings: rows as received (``raw_data``) and cleaned (``clean_data``), read and written by
what the steps need — a batch's rows, a round's, the training and test sets up to a round, the
hashes cleaning deduplicates against, the places the UI offers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from mlops_cli.store.frames import as_read, insert_frame, read_table
from mlops_cli.store.tables import clean_data, raw_data

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Connection, Engine

RAW_COLUMNS = [c.name for c in raw_data.columns]
CLEAN_TABLE_COLUMNS = [c.name for c in clean_data.columns]


# --- raw_data ----------------------------------------------------------------------------------


def raw_rows_of_batch(conn: Connection, batch: int) -> pd.DataFrame:
    return read_table(conn, raw_data, raw_data.c.batch == batch)


def raw_rows_of_round(conn: Connection, batch: int, round_id: int) -> pd.DataFrame:
    # by batch first: raw_data is indexed by batch, and a round's rows are all of one batch
    return read_table(conn, raw_data, (raw_data.c.batch == batch) & (raw_data.c.round == round_id))


def add_raw_rows(conn: Connection, frame: pd.DataFrame) -> pd.DataFrame:
    """Append ``frame`` (every raw column) to ``raw_data``; returns the rows as a read would give
    them back (so that cleaning need not read them again)."""
    insert_frame(conn, raw_data, frame[RAW_COLUMNS])
    return as_read(raw_data, frame[RAW_COLUMNS])


# --- clean_data --------------------------------------------------------------------------------


def replace_clean_rows(conn: Connection, round_id: int, kept: pd.DataFrame) -> None:
    """The clean rows of ``round_id`` become ``kept`` (every clean column)."""
    conn.execute(delete(clean_data).where(clean_data.c.round == round_id))
    insert_frame(conn, clean_data, kept[CLEAN_TABLE_COLUMNS])


def clean_hashes(conn: Connection, *, besides: int, after: int | None = None) -> pd.DataFrame:
    """``row_hash`` and ``round`` of the clean rows of every round but ``besides`` (only those
    after round ``after`` when given)."""
    where = clean_data.c.round != besides
    if after is not None:
        where = where & (clean_data.c.round > after)
    return read_table(conn, clean_data, where, columns=["row_hash", "round"])


def round_rows(conn: Connection, round_id: int, columns: list[str]) -> pd.DataFrame:
    return read_table(conn, clean_data, clean_data.c.round == round_id, columns=columns)


def rows_before(conn: Connection, round_id: int, columns: list[str]) -> pd.DataFrame:
    """Every clean row of the rounds before ``round_id`` (train and test)."""
    return read_table(conn, clean_data, clean_data.c.round < round_id, columns=columns)


def training_rows(bind: Engine | Connection, upto: int, columns: list[str] | None = None) -> pd.DataFrame:
    """The training rows of the rounds up to ``upto``."""
    return read_table(bind, clean_data, (clean_data.c.split == "train") & (clean_data.c.round <= upto), columns=columns)


def test_rows(bind: Engine | Connection, upto: int | None = None) -> pd.DataFrame:
    """The test rows of every round (or of the rounds up to ``upto``): the held-out set every
    version is compared on."""
    where = clean_data.c.split == "test"
    if upto is not None:
        where = where & (clean_data.c.round <= upto)
    return read_table(bind, clean_data, where)


def test_hashes(engine: Engine, upto: int | None = None) -> list[int]:
    """The ``row_hash`` of every test row (of the rounds up to ``upto``): what identifies the test
    set :func:`test_rows` reads, without reading it."""
    where = clean_data.c.split == "test"
    if upto is not None:
        where = where & (clean_data.c.round <= upto)
    with engine.connect() as conn:
        return list(conn.execute(select(clean_data.c.row_hash).where(where)).scalars())


def locations(engine: Engine) -> list[tuple[str, str, str]]:
    """Every (state, city, zip code) the clean rows hold, once each, sorted: the places the UI
    offers. Distinct in the database, not by reading every row."""
    columns: list[Any] = [clean_data.c.state, clean_data.c.city, clean_data.c.zip_code]
    query = select(*columns).where(*(c.is_not(None) for c in columns)).group_by(*columns).order_by(*columns)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]
