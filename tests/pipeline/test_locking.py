"""One writer per data DB, on every backend: a second writer is refused naming the holder, waits
with --wait-lock, and a holder killed with SIGKILL leaves nothing locked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_cli.config import load_settings
from mlops_cli.pipeline.locking import LockHeld, writer_lock
from mlops_cli.pipeline.storage import engine_for

# A second process: tries the lock (waiting or not) and says what happened.
CHILD = """
import sys, time
from mlops_cli.pipeline.locking import LockHeld, writer_lock
from mlops_cli.config import load_settings
from mlops_cli.pipeline.storage import engine_for
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
