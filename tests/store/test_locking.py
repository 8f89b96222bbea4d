"""One writer per data DB, on every backend: a second writer is refused naming the holder, waits
with --wait-lock, and a holder killed with SIGKILL leaves nothing locked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_cli.config import load_settings
from mlops_cli.store.db import engine_for
from mlops_cli.store.locking import LockHeld, writer_lock

# A second process: tries the lock (waiting or not) and says what happened.
CHILD = """
import sys, time
from mlops_cli.store.locking import LockHeld, writer_lock
from mlops_cli.config import load_settings
from mlops_cli.store.db import engine_for
mode = sys.argv[1]
engine = engine_for(load_settings())
try:
    with writer_lock(engine, wait=mode == "wait", on_wait=lambda text: print("waiting", flush=True)):
        print("acquired", flush=True)
        if mode == "hold":
            time.sleep(600)
except LockHeld as exc:
    print("refused:", exc.message, flush=True)
"""


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def data_db_url(request: pytest.FixtureRequest, home: Path) -> str | None:
    if request.param == "sqlite":
        return None
    request.applymarker(pytest.mark.external_db)
    return request.getfixturevalue(f"{request.param}_url")


def child(mode: str, url: str | None) -> subprocess.Popen:
    env = {**os.environ, **({"MLOPS_DATA_DB_URL": url} if url else {})}
    return subprocess.Popen([sys.executable, "-c", CHILD, mode], env=env, stdout=subprocess.PIPE, text=True)


def test_a_second_writer_is_refused_naming_the_holder_or_waits_for_it(data_db_url: str | None) -> None:
    engine = engine_for(load_settings(data_db_url=data_db_url))
    with writer_lock(engine):
        refused = child("try", data_db_url)
        assert refused.communicate(timeout=60)[0].startswith(
            f"refused: the data DB is being written by pid {os.getpid()}"
        )
        waiting = child("wait", data_db_url)
        assert waiting.stdout.readline().strip() == "waiting"
    assert waiting.communicate(timeout=60)[0].strip().endswith("acquired"), "taken once the holder let go"


def test_a_holder_killed_with_sigkill_leaves_nothing_locked(data_db_url: str | None) -> None:
    holder = child("hold", data_db_url)
    assert holder.stdout.readline().strip() == "acquired"
    engine = engine_for(load_settings(data_db_url=data_db_url))
    with pytest.raises(LockHeld, match=f"pid {holder.pid}"):
        with writer_lock(engine):
            pass
    holder.kill()
    holder.wait()
    with writer_lock(engine, wait=10):  # the system or the server released it with the process
        pass


def _round_summary(url: str, mlflow_db: Path) -> dict[str, object]:
    import sqlite3

    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        summary = {
            "rounds": conn.execute(
                text("SELECT batch, state, retrained, version, promoted FROM batch_log ORDER BY id")
            ).all(),
            "promotions": conn.execute(
                text("SELECT action, old_version, new_version FROM promotions ORDER BY id")
            ).all(),
        }
    engine.dispose()
    with sqlite3.connect(mlflow_db) as db:
        summary["versions"] = db.execute("SELECT version, run_id IS NOT NULL FROM model_versions").fetchall()
    return summary


@pytest.mark.external_db
@pytest.mark.slow
@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_a_writer_whose_lock_connection_is_dropped_cannot_commit(
    home: Path, tmp_path: Path, request: pytest.FixtureRequest, server: str
) -> None:
    """Run A pauses inside its first training (MLflow run started, nothing registered); the server
    drops every connection of the data DB (the lock's included, so the lock is gone); run B takes
    the lock and finishes the data; A resumes: it must stop with one line, register and commit
    nothing, leaving the tables and versions one uninterrupted run leaves."""
    from tests.conftest import run_mlops

    url = request.getfixturevalue(f"{server}_url")
    env = {"MLOPS_GENERATOR_BATCHES": "3", "MLOPS_GENERATOR_BATCH_ROWS": "300", "MLOPS_DATA_DB_URL": url}
    resume = tmp_path / "resume"
    a = _paused_in_first_training(env, resume)
    try:
        _drop_connections(server, url)
        b = run_mlops("train", "--all", "--no-reload-api", env=env)
        assert b.returncode == 0, b.stderr
        resume.touch()
        _, stderr = a.communicate(timeout=300)
    finally:
        a.kill()
    assert a.returncode == 1
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "lost the data DB's writer lock" in lines[0], stderr
    assert "SQL:" not in stderr and "parameters" not in stderr
    after = _round_summary(url, home / "mlflow.db")

    assert after == _uninterrupted_summary(env, tmp_path)


@pytest.mark.external_db
@pytest.mark.slow
@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_a_writer_whose_connections_are_dropped_and_nobody_took_over_goes_on(
    home: Path, tmp_path: Path, request: pytest.FixtureRequest, server: str
) -> None:
    """The server drops every connection of the data DB while a run is inside its first training
    (the lock's connection included): nobody else took the lock, so the run takes it again and
    ends as one uninterrupted run ends — a dropped connection is a transient fault."""

    url = request.getfixturevalue(f"{server}_url")
    env = {"MLOPS_GENERATOR_BATCHES": "3", "MLOPS_GENERATOR_BATCH_ROWS": "300", "MLOPS_DATA_DB_URL": url}
    resume = tmp_path / "resume"
    a = _paused_in_first_training(env, resume)
    try:
        _drop_connections(server, url)
        resume.touch()
        _, stderr = a.communicate(timeout=300)
    finally:
        a.kill()
    assert a.returncode == 0, stderr
    after = _round_summary(url, home / "mlflow.db")
    assert after == _uninterrupted_summary(env, tmp_path)


def _paused_in_first_training(env: dict[str, str], resume: Path) -> subprocess.Popen:
    """`mlops train --all` started and paused inside its first training (MLflow run started,
    nothing registered); touching ``resume`` lets it go on."""
    from mlops_cli.ops.services import mlops_command

    run = subprocess.Popen(
        [*mlops_command(), "train", "--all", "--no-reload-api"],
        env={**os.environ, **env, "MLOPS_FAULT_PAUSE_AT": "run_started@0", "MLOPS_FAULT_RESUME_FILE": str(resume)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(1200):
        if Path(f"{resume}.paused").exists() or run.poll() is not None:
            break
        __import__("time").sleep(0.1)
    if not Path(f"{resume}.paused").exists():
        run.kill()
        pytest.fail(f"the run never paused: {run.communicate()[1]}")
    return run


def _uninterrupted_summary(env: dict[str, str], tmp_path: Path) -> dict[str, object]:
    """What one uninterrupted run of ``env`` leaves, in a home (SQLite data DB) of its own."""
    from tests.conftest import run_mlops

    reference_home = tmp_path / "reference" / ".mlops"
    reference_db = f"sqlite:///{reference_home}/data.db"
    reference = run_mlops(
        "train",
        "--all",
        "--no-reload-api",
        env={**env, "MLOPS_HOME": str(reference_home), "MLOPS_DATA_DB_URL": reference_db},
    )
    assert reference.returncode == 0, reference.stderr
    return _round_summary(reference_db, reference_home / "mlflow.db")


def _drop_connections(server: str, url: str) -> None:
    """Every connection to the data DB terminated by the server (pg_terminate_backend / KILL)."""
    database = url.rsplit("/", 1)[1]
    if server == "postgres":
        import psycopg

        admin = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchall()
    else:
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
        with conn.cursor() as cursor:
            cursor.execute("SELECT id FROM information_schema.processlist WHERE db = %s", (database,))
            killed = cursor.fetchall()
            for (pid,) in killed:
                cursor.execute(f"KILL {int(pid)}")
        conn.close()
    assert killed, "run A had no connection to drop"
