"""The stack's watchdog: a service that dies is started again, counted, with backoff."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from mlops_cli.ops.netutil import port_is_free
from tests.conftest import alive, run_mlops


@pytest.mark.slow  # the `mlops` command or real processes: the full suite's, not the fast lane's
def test_a_service_that_dies_is_started_again_and_counted(home: Path, stack_env: dict[str, str]) -> None:
    """kill -9 of a service's leader (MLflow's workers keep its port): the watchdog stops what is
    left of it, starts it again, counts it; `down` stops the watchdog with the stack. Airflow is
    hidden, as with the README's `[ui]` install: the watchdog must not need it."""
    without_airflow = {
        "PATH": os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "airflow").exists())
    }
    started = run_mlops("up", env=without_airflow)
    assert started.returncode == 0, started.stderr + started.stdout
    before = json.loads((home / "stack.json").read_text())["services"]
    killed = ("mlflow", "data-api", "api")
    for name in killed:
        os.kill(before[name]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 120
    rows: dict = {}
    while time.monotonic() < deadline:
        rows = {r["service"]: r for r in json.loads(run_mlops("status", "--json").stdout)}
        if all(rows[n]["healthy"] and rows[n]["restarts"] == 1 for n in killed):
            break
        time.sleep(1)
    log = (home / "logs" / "supervisor.log").read_text()
    for name in killed:
        assert rows[name]["healthy"] and rows[name]["restarts"] == 1, (rows[name], log)
        assert rows[name]["pid"] != before[name]["pid"] and "restarted 1x" in rows[name]["detail"]
    assert rows["ui"]["restarts"] == 0
    assert "mlflow (pid" in log and "had died: started again" in log and "Traceback" not in log
    watchdog = json.loads((home / "supervisor.json").read_text())["pid"]
    assert run_mlops("down").returncode == 0
    assert not alive(watchdog) and not (home / "supervisor.json").exists()
    assert all(port_is_free("127.0.0.1", int(port)) for port in stack_env.values())
