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


def test_the_embedded_data_db_lets_a_writer_commit_under_a_long_read(home: Path) -> None:
    """The API's events, the loop's rounds: a read under way in another process (a retrain
    reading its rows, the UI, an export) must not hold a commit (SQLite's write-ahead log)."""
    import sqlite3

    from mlops_cli.store import db
    from mlops_cli.store.meta import set_meta

    engine = db.engine_for(load_settings())
    reader = sqlite3.connect(home / "data.db", isolation_level=None, timeout=0.5)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM mlops_meta").fetchone()
    try:
        with engine.begin() as conn:  # failed with "database is locked" on the rollback journal
            set_meta(conn, during_the_read="written")
    finally:
        reader.execute("ROLLBACK")
        reader.close()
    assert sqlite3.connect(home / "data.db").execute(
        "SELECT value FROM mlops_meta WHERE key = 'during_the_read'"
    ).fetchone() == ("written",)


def test_a_copy_of_a_live_home_keeps_this_process_locks_and_every_committed_row(home: Path, tmp_path: Path) -> None:
    """The suite copies homes it holds open (tests.conftest.copy_home). shutil.copytree closed the
    database files behind SQLite's back, which drops this process's locks: another process then
    took the write-ahead log's shared memory for unused and reset it (a registry DB corrupted in
    the fast lane). The copy must leave the locks held and carry the rows still in the log."""
    import sqlite3
    import subprocess
    import sys

    from mlops_cli.store import db
    from mlops_cli.store.meta import set_meta
    from tests.conftest import copy_home

    engine = db.engine_for(load_settings())
    with engine.begin() as conn:
        set_meta(conn, copied="yes")
    assert (home / "data.db-shm").exists(), "the embedded data DB runs with its write-ahead log"
    copy_home(home, tmp_path / "copy")
    # SQLite's unix VFS: every connection to a WAL database holds a shared lock on byte 128 of -shm
    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "try:\n    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)\nexcept OSError:\n    print('held')\n"
        "else:\n    print('free')\n"
    )
    held = subprocess.run([sys.executable, "-c", probe, str(home / "data.db-shm")], capture_output=True, text=True)
    assert held.stdout.strip() == "held", "this process's connection lost its lock on the shared memory"
    copied = sqlite3.connect(tmp_path / "copy" / "data.db")
    assert copied.execute("SELECT value FROM mlops_meta WHERE key = 'copied'").fetchone() == ("yes",)
    assert copied.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    copied.close()
    engine.dispose()
