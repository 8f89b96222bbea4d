"""The embedded MLflow database: a kill while it is created cannot wedge the home (issue 27, item 4)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from mlops_cli.errors import MlopsError
from mlops_cli.registry.embedded import embedded_path, ensure_embedded_db, head_revision, state_of
from tests.conftest import run_mlops, serving_settings

# The migration that adds traces' client_request_id column: killed after its DDL and before its
# version bump, it left "duplicate column name: client_request_id" on every rerun (as seen)
CUT_AT = "cbc13b556ace"


def half_migrated(path: Path, runs: int = 0) -> str:
    """What a kill in the middle of MLflow's first migration leaves: every migration up to
    :data:`CUT_AT` applied, the database still saying it is at the one before; with ``runs``, runs
    written already. Returns the revision it says it is at."""
    import sqlalchemy
    from alembic import command
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import InitialBase, _get_alembic_config

    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    InitialBase.metadata.create_all(engine)
    config = _get_alembic_config(str(engine.url))
    parent = ScriptDirectory.from_config(config).get_revision(CUT_AT).down_revision
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, CUT_AT)
        connection.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = :p"), {"p": parent})
        for i in range(runs):
            connection.execute(
                sqlalchemy.text(
                    "INSERT INTO runs (run_uuid, experiment_id, lifecycle_stage, status, start_time) "
                    "VALUES (:id, 0, 'active', 'FINISHED', 0)"
                ),
                {"id": f"run{i}"},
            )
    engine.dispose()
    return parent


@pytest.mark.slow
def test_a_half_migrated_empty_database_is_rebuilt_and_the_loop_runs(home: Path) -> None:
    """Reproduces the wedge: before, every rerun failed ('duplicate column name …', blamed on the
    data DB); now the broken file is moved aside and rebuilt whole."""
    settings = serving_settings(home, generator_batches=2)
    path = embedded_path(settings)
    assert path == home / "mlflow.db"
    home.mkdir(parents=True, exist_ok=True)
    middle = half_migrated(path)
    assert state_of(path)[0] == middle != head_revision()
    done = run_mlops("train", "--all", "--no-reload-api", "--json", env={"MLOPS_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    assert state_of(path)[0] == head_revision()
    aside = list(home.glob("mlflow.db.broken-*"))
    assert len(aside) == 1 and state_of(aside[0])[0] == middle, "the broken file is kept for a look"
    versions = json.loads(run_mlops("models", "list", "--json", env={"MLOPS_HOME": str(home)}).stdout)
    assert versions, "versions registered in the rebuilt database"


def test_a_half_migrated_database_with_runs_is_named_and_left_alone(home: Path) -> None:
    settings = serving_settings(home)
    path = embedded_path(settings)
    home.mkdir(parents=True, exist_ok=True)
    half_migrated(path, runs=2)
    before = path.read_bytes()
    with pytest.raises(MlopsError) as refused:
        ensure_embedded_db(settings)
    assert str(path) in refused.value.message and "holds 2 runs" in refused.value.message
    assert "mlflow db upgrade" in (refused.value.hint or "")
    assert path.read_bytes() == before
    train = run_mlops("train", "--all", "--no-reload-api", env={"MLOPS_HOME": str(home)})
    assert train.returncode == 1 and "mlflow.db" in train.stderr and "data DB" not in train.stderr
    assert len(train.stderr.strip().splitlines()) <= 3, train.stderr


@pytest.mark.slow
def test_a_kill_while_the_database_is_created_leaves_no_trace(home: Path) -> None:
    """SIGKILL after every migration ran but before the rename: no mlflow.db at all (the old code
    had a half-migrated one in place); the rerun ends like an uninterrupted run."""
    env = {"MLOPS_HOME": str(home), "MLOPS_GENERATOR_BATCHES": "2"}
    killed = run_mlops("train", "--all", "--no-reload-api", env={**env, "MLOPS_FAULT_KILL_AT": "mlflow_db_migrated"})
    assert killed.returncode == -9
    assert not (home / "mlflow.db").exists() and list(home.glob("mlflow.db.creating-*"))
    rerun = run_mlops("train", "--all", "--no-reload-api", "--json", env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert not list(home.glob("mlflow.db.creating-*")), "the killed attempt's file is cleared"
    other = home.parent / "uninterrupted"
    clean = run_mlops("train", "--all", "--no-reload-api", "--json", env={**env, "MLOPS_HOME": str(other)})
    listed = [
        [(v["version"], v["aliases"]) for v in json.loads(run_mlops("models", "list", "--json", env=e).stdout)]
        for e in (env, {**env, "MLOPS_HOME": str(other)})
    ]
    assert clean.returncode == 0 and listed[0] == listed[1]


@pytest.mark.slow
def test_concurrent_first_opens_make_one_database(home: Path) -> None:
    """Two processes creating it at once: one builds, the other waits and finds it whole."""
    home.mkdir(parents=True, exist_ok=True)
    code = (
        "from tests.conftest import serving_settings; from pathlib import Path; "
        "from mlops_cli.registry.embedded import ensure_embedded_db; "
        f"ensure_embedded_db(serving_settings(Path({str(home)!r})))"
    )
    import sys

    root = Path(__file__).resolve().parents[2]
    processes = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, cwd=root) for _ in range(3)]
    assert all(p.wait(120) == 0 for p in processes), [p.stderr.read() for p in processes if p.stderr]
    assert state_of(home / "mlflow.db") == (head_revision(), False, 0)
    with sqlite3.connect(home / "mlflow.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
