"""The batch engine's steps: a step that fails mid-transaction leaves its round where it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest


def test_a_failed_step_leaves_the_round_where_it_was_and_a_rerun_resumes_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that fails mid-transaction (here: the data DB refuses the clean rows) changes nothing."""
    from sqlalchemy import event

    from mlops_cli.config import load_settings
    from mlops_cli.errors import StorageError
    from mlops_cli.pipeline.train import run
    from mlops_cli.store.db import engine_for
    from mlops_cli.store.frames import count_rows
    from mlops_cli.store.rounds import batch_log_rows
    from mlops_cli.store.tables import clean_data

    settings = load_settings(generator_batches=2, generator_batch_rows=200)
    engine = engine_for(settings)

    def refuse(conn, cursor, statement, *args) -> None:
        if statement.startswith("INSERT INTO clean_data"):
            raise sqlite3.OperationalError("disk I/O error")

    event.listen(engine, "before_cursor_execute", refuse)
    with pytest.raises(StorageError, match="failed after batch 0 was stored.*disk I/O error"):
        run(settings, reload_api=False)
    assert [r["state"] for r in batch_log_rows(engine)] == ["stored"]
    assert count_rows(engine, clean_data) == 0
    event.remove(engine, "before_cursor_execute", refuse)
    report = run(settings, reload_api=False)
    assert [(b.batch, b.state) for b in report.batches] == [(0, "done"), (1, "done")]
    assert count_rows(engine, clean_data) == sum(r["rows_kept"] for r in batch_log_rows(engine))


@pytest.mark.external_db
def test_a_terminated_postgres_connection_mid_step_loses_nothing(home: Path, postgres_url: str) -> None:
    """The server kills our connection inside the clean step's transaction; a rerun resumes."""
    import psycopg
    from sqlalchemy import event

    from mlops_cli.config import load_settings
    from mlops_cli.errors import StorageError
    from mlops_cli.pipeline.train import run
    from mlops_cli.store.db import engine_for
    from mlops_cli.store.frames import count_rows
    from mlops_cli.store.rounds import batch_log_rows
    from mlops_cli.store.tables import clean_data

    settings = load_settings(data_db_url=postgres_url, generator_batches=2, generator_batch_rows=200)
    engine = engine_for(settings)
    admin = postgres_url.rsplit("/", 1)[0] + "/postgres"
    killed: list[int] = []

    def terminate_once(conn, cursor, statement, *args) -> None:
        if statement.startswith("DELETE FROM clean_data") and not killed:
            pid = conn.connection.driver_connection.info.backend_pid
            with psycopg.connect(admin, autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", (pid,))
            killed.append(pid)

    event.listen(engine, "before_cursor_execute", terminate_once)
    with pytest.raises(StorageError, match="failed after batch 0 was stored"):
        run(settings, reload_api=False)
    assert killed and [r["state"] for r in batch_log_rows(engine)] == ["stored"]
    report = run(settings, reload_api=False)
    assert [(b.batch, b.state) for b in report.batches] == [(0, "done"), (1, "done")]
    assert count_rows(engine, clean_data) == sum(r["rows_kept"] for r in batch_log_rows(engine))


# --- the course's data API: a release window, repeats, samples --------------------------------------
