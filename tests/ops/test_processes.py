"""The processes `mlops up` started: their record, ours told from a recycled pid, groups stopped whole."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_cli.config import load_settings
from mlops_cli.errors import StackError
from mlops_cli.ops.processes import (
    ServiceState,
    process_start_time,
    read_state,
    same_process,
    state_path,
    stop_services,
    write_state,
)


def _state(pid: int, start_time: str | None) -> ServiceState:
    return ServiceState(
        name="api",
        pid=pid,
        start_time=start_time,
        host="127.0.0.1",
        port=1,
        url="u",
        health_url="h",
        log="l",
        command=[],
    )


def test_the_record_round_trips_and_an_unreadable_one_is_named(home: Path) -> None:
    settings = load_settings()
    assert read_state(settings) == {}
    write_state(settings, {"api": _state(123, "456")})
    assert read_state(settings) == {"api": _state(123, "456")}
    state_path(settings).write_text("{not json")
    with pytest.raises(StackError, match="unreadable"):
        read_state(settings)


def _sleeper_group() -> subprocess.Popen:
    """A process group leader with a child of its own (as uvicorn or MLflow's workers)."""
    sleep = "import time; time.sleep(60)"
    code = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {sleep!r}]); {sleep}"
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)


def _members(pgid: int, wait: float = 0) -> list[str]:
    """The living members of a process group (zombies waiting for init to reap them aside);
    ``wait``: seconds to let signals already sent take effect."""
    deadline = time.monotonic() + wait
    while True:
        listed = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(pgid)], capture_output=True, text=True).stdout
        living = [line.split()[0] for line in listed.splitlines() if "Z" not in line.split()[1]]
        if not living or time.monotonic() > deadline:
            return living
        time.sleep(0.05)


def test_a_group_is_stopped_whole_and_a_recycled_pid_is_never_signalled(home: Path) -> None:
    ours, stranger = _sleeper_group(), _sleeper_group()
    try:
        time.sleep(0.5)  # the children exist
        started = process_start_time(ours.pid)
        assert started is not None and same_process(ours.pid, started)
        assert not same_process(stranger.pid, "1"), "same pid, another start time: not ours"
        stopped = stop_services([_state(ours.pid, started), _state(stranger.pid, "1")], timeout=5)
        assert [s.pid for s in stopped] == [ours.pid]
        assert ours.wait(timeout=5) is not None
        assert stranger.poll() is None
        assert _members(ours.pid, wait=5) == [], "the leader's child went with it"
        assert len(_members(stranger.pid)) == 2
    finally:
        for process in (ours, stranger):
            subprocess.run(["pkill", "-KILL", "-g", str(process.pid)], check=False)
            process.wait()
