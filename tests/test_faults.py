"""The fault hooks: a kill or a pause at a named step boundary, nothing when unset."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_cli.faults import _listed, checkpoint


@pytest.mark.parametrize(
    ("spec", "name", "batch", "listed"),
    [
        ("stored", "stored", 3, True),
        ("stored@3", "stored", 3, True),
        ("stored@3", "stored", 4, False),
        ("cleaned, stored@2", "stored", 2, True),
        ("stored@3", "stored", None, False),
        ("store", "stored", 1, False),
    ],
)
def test_a_boundary_is_named_alone_or_with_its_batch(spec: str, name: str, batch: int | None, listed: bool) -> None:
    assert _listed(spec, name, batch) is listed


def test_unset_hooks_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_FAULT_KILL_AT", raising=False)
    monkeypatch.delenv("MLOPS_FAULT_PAUSE_AT", raising=False)
    checkpoint("stored", 1)  # returns


def _child(env: dict[str, str]) -> subprocess.Popen:
    code = "from mlops_cli.faults import checkpoint; checkpoint('cleaned', 2); print('went on', flush=True)"
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)


def test_a_kill_point_kills_the_process_with_sigkill() -> None:
    child = _child({"MLOPS_FAULT_KILL_AT": "cleaned@2"})
    out, _ = child.communicate(timeout=30)
    assert child.returncode == -9 and out == ""


def test_a_pause_point_waits_for_the_resume_file(tmp_path: Path) -> None:
    resume = tmp_path / "resume"
    child = _child({"MLOPS_FAULT_PAUSE_AT": "cleaned", "MLOPS_FAULT_RESUME_FILE": str(resume)})
    deadline = time.monotonic() + 30
    while not Path(f"{resume}.paused").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Path(f"{resume}.paused").exists() and child.poll() is None, "paused at the boundary"
    resume.touch()
    assert child.communicate(timeout=30)[0] == "went on\n"
