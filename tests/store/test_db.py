"""The data DB's engine: an older schema upgraded in place, a newer one refused."""

from pathlib import Path

import pandas as pd
import pytest

from mlops_cli.config import load_settings
from mlops_cli.store.frames import read_table


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
