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


def test_a_data_db_of_schema_2_gains_row_hashes_and_still_finds_duplicates(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """clean_data's row_hash came with schema 3: an older data DB is migrated in place when
    opened, its rows kept, and a later round is still deduplicated against them."""
    from sqlalchemy import text

    from mlops_cli.pipeline.engine import advance, fetch
    from mlops_cli.store import db
    from mlops_cli.store.meta import get_meta
    from mlops_cli.store.rounds import get_round
    from mlops_cli.store.tables import SCHEMA_VERSION, clean_data
    from tests.conftest import FixedSource, good_rows, pipeline_with

    settings = load_settings()
    source = FixedSource({0: good_rows(30), 1: good_rows(10, start=25)})
    pipe = pipeline_with(settings, source)
    first = fetch(pipe).round_id
    advance(pipe, first, "cleaned")
    before = read_table(pipe.engine, clean_data)
    with pipe.engine.begin() as conn:  # what schema 2 looked like
        conn.execute(text("ALTER TABLE clean_data DROP COLUMN row_hash"))
        conn.execute(text("UPDATE mlops_meta SET value = '2' WHERE key = 'schema_version'"))
    pipe.engine.dispose()
    monkeypatch.setattr(db, "_engines", {})

    pipe = pipeline_with(settings, source)
    after = read_table(pipe.engine, clean_data)
    pd.testing.assert_frame_equal(after, before)
    with pipe.engine.connect() as conn:
        assert get_meta(conn, "schema_version") == SCHEMA_VERSION
    second = fetch(pipe).round_id
    advance(pipe, second, "cleaned")
    r = get_round(pipe.engine, second)
    assert (r["rows_kept"], r["dropped"]) == (5, {"duplicate": 5})


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.external_db)])
def test_a_schema_3_data_db_gains_the_audit_columns_and_its_rounds_still_read(
    home: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, backend: str
) -> None:
    """Schema 3 → 5: batch_log's audit record, the promotion's rule (4) and raw_data's extra
    values (5) are new nullable columns, added when the data DB is opened; rounds written before
    read as "not recorded"."""
    from sqlalchemy import inspect, text

    from mlops_cli.pipeline.engine import advance, fetch
    from mlops_cli.pipeline.reports import all_batches
    from mlops_cli.store import db, listings
    from mlops_cli.store.meta import get_meta
    from mlops_cli.store.tables import SCHEMA_VERSION
    from tests.conftest import FixedSource, good_rows, pipeline_with

    if backend == "postgres":
        monkeypatch.setenv("MLOPS_DATA_DB_URL", request.getfixturevalue("postgres_url"))
    settings = load_settings()
    source = FixedSource({0: good_rows(30)})
    pipe = pipeline_with(settings, source)
    first = fetch(pipe).round_id
    advance(pipe, first, "cleaned")
    new = {"batch_log": ["validation", "champion_on_batch", "decision", "training", "promotion"]}
    new["promotions"] = ["rule", "detail"]
    new["raw_data"] = ["extra"]
    with pipe.engine.begin() as conn:  # what schema 3 looked like
        for table, columns in new.items():
            for column in columns:
                conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(text("UPDATE mlops_meta SET value = '3' WHERE key = 'schema_version'"))
    pipe.engine.dispose()
    monkeypatch.setattr(db, "_engines", {})

    pipe = pipeline_with(settings, source)
    for table, columns in new.items():
        assert set(columns) <= {c["name"] for c in inspect(pipe.engine).get_columns(table)}
    (old,) = all_batches(pipe.engine).batches
    assert old.batch == 0 and old.validation is None and old.decision is None and old.reason == ""
    from mlops_cli.pipeline.records import short_reason

    assert short_reason(old) == "cleaned", "an unfinished round says where it is"
    with pipe.engine.connect() as conn:
        assert get_meta(conn, "schema_version") == SCHEMA_VERSION == "5"
        assert listings.raw_rows_of_batch(conn, 0)["extra"].isna().all(), "rows stored before kept no extras"
    pipe.engine.dispose()
