"""The bulk writer against every data DB we support, PostgreSQL's COPY path included."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_cli.config import load_settings
from mlops_cli.pipeline.storage import engine_for, insert_frame, raw_data, read_table
from mlops_cli.schema import COLUMNS

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
    }
)[COLUMNS]


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


def test_a_data_db_of_schema_2_gains_row_hashes_and_still_finds_duplicates(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """clean_data's row_hash came with schema 3: an older data DB is migrated in place when
    opened, its rows kept, and a later round is still deduplicated against them."""
    from sqlalchemy import text

    from mlops_cli.pipeline import storage
    from mlops_cli.pipeline.engine import clean, fetch, store
    from tests.conftest import FixedSource, good_rows, pipeline_with

    settings = load_settings()
    source = FixedSource({0: good_rows(30), 1: good_rows(10, start=25)})
    pipe = pipeline_with(settings, source)
    first = fetch(pipe).round_id
    store(pipe, first), clean(pipe, first)
    before = read_table(pipe.engine, storage.clean_data)
    with pipe.engine.begin() as conn:  # what schema 2 looked like
        conn.execute(text("ALTER TABLE clean_data DROP COLUMN row_hash"))
        conn.execute(text("UPDATE mlops_meta SET value = '2' WHERE key = 'schema_version'"))
    pipe.engine.dispose()
    monkeypatch.setattr(storage, "_engines", {})

    pipe = pipeline_with(settings, source)
    after = read_table(pipe.engine, storage.clean_data)
    pd.testing.assert_frame_equal(after, before)
    with pipe.engine.connect() as conn:
        assert storage.get_meta(conn, "schema_version") == storage.SCHEMA_VERSION
    second = fetch(pipe).round_id
    store(pipe, second), clean(pipe, second)
    r = storage.get_round(pipe.engine, second)
    assert (r["rows_kept"], r["dropped"]) == (5, {"duplicate": 5})
