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
    with pytest.raises(StorageError, match="failed after batch 0 was quality_checked.*disk I/O error"):
        run(settings, reload_api=False)
    assert [r["state"] for r in batch_log_rows(engine)] == ["quality_checked"]
    assert count_rows(engine, clean_data) == 0
    event.remove(engine, "before_cursor_execute", refuse)
    report = run(settings, reload_api=False)
    assert [(b.batch, b.state) for b in report.batches] == [(0, "done"), (1, "done")]
    assert count_rows(engine, clean_data) == sum(r["rows_kept"] for r in batch_log_rows(engine))


@pytest.mark.external_db
def test_a_terminated_postgres_connection_mid_step_is_retried_and_loses_nothing(
    home: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server kills our connection inside the clean step's transaction: a transient fault,
    the step runs again from the round's stored state. Killed at every try, the run stops with
    one line naming the database, the round where it was; the rerun resumes."""
    import psycopg
    from sqlalchemy import event

    from mlops_cli.config import load_settings
    from mlops_cli.errors import ConnectionDropped
    from mlops_cli.pipeline import engine as loop
    from mlops_cli.pipeline.train import run
    from mlops_cli.store.db import engine_for
    from mlops_cli.store.frames import count_rows
    from mlops_cli.store.rounds import batch_log_rows
    from mlops_cli.store.tables import clean_data

    monkeypatch.setattr(loop, "DISCONNECT_RETRIES", 2)
    settings = load_settings(data_db_url=postgres_url, generator_batches=3, generator_batch_rows=200)
    engine = engine_for(settings)
    admin = postgres_url.rsplit("/", 1)[0] + "/postgres"
    killed: list[int] = []
    kills_left = [1]

    def terminate(conn, cursor, statement, *args) -> None:
        if statement.startswith("DELETE FROM clean_data") and kills_left[0] > 0:
            kills_left[0] -= 1
            pid = conn.connection.driver_connection.info.backend_pid
            with psycopg.connect(admin, autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", (pid,))
            killed.append(pid)

    event.listen(engine, "before_cursor_execute", terminate)
    report = run(settings, reload_api=False, batch=0)  # killed once: retried, nothing to rerun
    assert len(killed) == 1 and [(b.batch, b.state) for b in report.batches] == [(0, "done")]

    kills_left[0] = 10  # killed at every try: the run gives up after the retries, in one line
    with pytest.raises(ConnectionDropped) as failure:
        run(settings, reload_api=False, batch=1)
    assert len(killed) == 1 + 3 and failure.value.message.startswith(
        f"lost the connection to the PostgreSQL data DB '{engine.url.database}' after batch 1 was quality_checked"
    )
    assert "127.0.0.1" not in failure.value.message
    assert [r["state"] for r in batch_log_rows(engine)] == ["done", "quality_checked"]
    event.remove(engine, "before_cursor_execute", terminate)
    report = run(settings, reload_api=False)
    assert [(b.batch, b.state) for b in report.batches] == [(1, "done"), (2, "done")]
    assert count_rows(engine, clean_data) == sum(r["rows_kept"] for r in batch_log_rows(engine))


# --- the course's data API: a release window, repeats, samples --------------------------------------
