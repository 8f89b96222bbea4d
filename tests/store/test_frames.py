"""The bulk writer against every data DB we support, PostgreSQL's COPY path included."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_cli.config import load_settings
from mlops_cli.schema import COLUMNS
from mlops_cli.store.db import engine_for
from mlops_cli.store.frames import as_read, insert_frame, read_table, row_hashes
from mlops_cli.store.tables import raw_data

TRICKY = pd.DataFrame(
    {
        "brokered_by": ["1", None, 'quote "inside"'],
        "status": ["sold", "for_sale", None],
        "price": [100.5, np.nan, 3e6],
        "bed": [np.nan, 2.0, 3.0],
        "bath": [1.0, 1.5, np.nan],
        "acre_lot": [0.1, 0.2, 0.3],
        "street": ["a, b", "line\nbreak", "x"],
        "city": ["Sán Juan", "Austin", None],
        "state": ["Puerto Rico", "Texas", "Ohio"],
        "zip_code": ["00601", "78701", None],
        "house_size": [1000.0, np.nan, 2000.0],
        "prev_sold_date": [None, "2020-01-02", None],
        "extra": ['{"note":"a, \\"b\\"\\nñ"}', None, '{"n":3}'],
    }
)[[*COLUMNS, "extra"]]


def roundtrip(settings) -> pd.DataFrame:
    engine = engine_for(settings)
    with engine.begin() as conn:
        insert_frame(conn, raw_data, TRICKY.assign(batch=3, round=1))
    stored = read_table(engine, raw_data).drop(columns=["batch", "round"])
    return stored.sort_values("acre_lot").reset_index(drop=True)


def expected() -> pd.DataFrame:
    return TRICKY.astype({c: object for c in TRICKY.columns if TRICKY[c].dtype == object})


def test_sqlite_roundtrip_keeps_nulls_and_text(home: Path) -> None:
    pd.testing.assert_frame_equal(roundtrip(load_settings()), expected(), check_dtype=False)


@pytest.mark.external_db
def test_postgres_copy_roundtrip_keeps_nulls_and_text(home: Path, postgres_url: str) -> None:
    stored = roundtrip(load_settings(data_db_url=postgres_url))
    pd.testing.assert_frame_equal(stored, expected(), check_dtype=False)


@pytest.mark.external_db
def test_mariadb_roundtrip(home: Path, mariadb_url: str) -> None:
    stored = roundtrip(load_settings(data_db_url=mariadb_url))
    pd.testing.assert_frame_equal(stored, expected(), check_dtype=False)


def adversarial_rows(n: int = 3000) -> pd.DataFrame:
    """Rows as ingestion hands them to the store: full-precision doubles over the whole range,
    -0.0, subnormals, NaN; text with accents, emoji, quotes, line breaks; a column with no value."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(index=range(n))
    for col in COLUMNS:
        if col in ("price", "bed", "bath", "acre_lot", "house_size"):
            frame[col] = rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300, n)
        else:
            frame[col] = pd.Series([f'{col} {i} Sán "q", ü€😀\nx' for i in range(n)], dtype=object)
    frame.loc[::7, "bed"] = np.nan
    frame.loc[:3, "bath"] = [-0.0, 5e-324, 1.7976931348623157e308, -2.2250738585072014e-308]
    frame.loc[::5, "city"] = None
    frame["street"] = pd.Series([None] * n, dtype=object)  # the 2022 release has no street at all
    extras = [None if i % 3 else f'{{"url":"x/{i}","t":"😀 \\"q\\""}}' for i in range(n)]
    frame["extra"] = pd.Series(extras, dtype=object)
    return frame.assign(batch=4, round=2)[[c.name for c in raw_data.columns]]


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.external_db),
        pytest.param("mariadb", marks=pytest.mark.external_db),
    ],
)
def test_rows_just_stored_are_known_without_reading_them_back(home: Path, backend: str, request) -> None:
    """clean takes a round's raw rows from memory (as_read) instead of reading them back: the
    frame must be the one read_table gives, dtype for dtype and value for value, same hashes."""
    url = {"sqlite": None, "postgres": "postgres_url", "mariadb": "mariadb_url"}[backend]
    settings = load_settings(data_db_url=request.getfixturevalue(url)) if url else load_settings()
    engine = engine_for(settings)
    rows = adversarial_rows()
    with engine.begin() as conn:
        insert_frame(conn, raw_data, rows.iloc[::2])  # a subset, as new_rows gives: its own index
    back = read_table(engine, raw_data, raw_data.c.round == 2)
    known = as_read(raw_data, rows.iloc[::2])
    pd.testing.assert_frame_equal(known, back, check_exact=True)  # -0.0 == 0.0 here, as for hashes
    assert (row_hashes(known) == row_hashes(back)).all()


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.external_db),
        pytest.param("mariadb", marks=pytest.mark.external_db),
    ],
)
def test_a_read_in_many_chunks_is_the_frame_of_one_read(
    home: Path, backend: str, request, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are turned into a frame a chunk at a time; joined, they are what one ``from_records``
    of every row gives — dtypes included, where a chunk's column is all NULL (text and integer)."""
    import mlops_cli.store.frames as frames
    from mlops_cli.store.tables import batch_log

    url = {"sqlite": None, "postgres": "postgres_url", "mariadb": "mariadb_url"}[backend]
    engine = engine_for(load_settings(data_db_url=request.getfixturevalue(url)) if url else load_settings())
    rows = adversarial_rows(1000)
    rows.loc[:299, "city"] = None  # the first chunks' city is NULL throughout
    with engine.begin() as conn:
        insert_frame(conn, raw_data, rows)
        conn.execute(
            batch_log.insert(), [{"batch": b, "state": "done", "rows_kept": b if b >= 3 else None} for b in range(7)]
        )
    whole = read_table(engine, raw_data)
    whole_batches = read_table(engine, batch_log)
    assert whole_batches["rows_kept"].dtype == np.float64  # NULLs among integers: float, as pandas reads them
    monkeypatch.setattr(frames, "READ_CHUNK", 128)
    chunked = read_table(engine, raw_data)
    pd.testing.assert_frame_equal(chunked, whole, check_exact=True)
    monkeypatch.setattr(frames, "READ_CHUNK", 2)  # chunks of batches 0-1 and 2 have no rows_kept at all
    pd.testing.assert_frame_equal(read_table(engine, batch_log), whole_batches, check_exact=True)
    assert read_table(engine, raw_data, raw_data.c.round == 99).columns.tolist() == whole.columns.tolist()


def test_a_large_read_never_holds_every_driver_row_at_once(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver's rows (a tuple and Python objects per value: ~9x the frame they become) are
    turned into frames a chunk at a time: a read of the 1.8 M training rows at the course's scale
    held 1.7 GB of them at once (0.5 GB now)."""
    import tracemalloc

    import mlops_cli.store.frames as frames
    from mlops_cli.store.tables import clean_data

    engine = engine_for(load_settings())
    n = 60_000
    rng = np.random.default_rng(3)
    clean = pd.DataFrame(
        {
            "price": rng.uniform(1e5, 1e6, n),
            "city": [f"City {i % 500}" for i in range(n)],
            "state": "Texas",
            "zip_code": [f"{i % 900:05d}" for i in range(n)],
            "bed": rng.integers(1, 6, n).astype(float),
            "bath": rng.integers(1, 4, n).astype(float),
            "acre_lot": rng.uniform(0, 2, n),
            "house_size": rng.uniform(500, 4000, n),
            "batch": 0,
            "round": 1,
            "split": "train",
            "row_hash": np.arange(n),
        }
    )[[c.name for c in clean_data.columns]]
    with engine.begin() as conn:
        insert_frame(conn, clean_data, clean)
    monkeypatch.setattr(frames, "READ_CHUNK", 5_000, raising=False)

    def peak(read) -> tuple[int, object]:
        tracemalloc.start()
        try:
            kept = read()
            return tracemalloc.get_traced_memory()[1], kept
        finally:
            tracemalloc.stop()

    with engine.connect() as conn:
        every_row, fetched = peak(lambda: conn.execute(clean_data.select()).cursor.fetchall())
    assert len(fetched) == n
    del fetched
    reading, frame = peak(lambda: read_table(engine, clean_data))
    assert len(frame) == n
    assert reading < every_row / 3, f"read peak {reading / 1e6:.0f} MB vs {every_row / 1e6:.0f} MB of driver rows"
