"""Fault hooks for testing exactly-once processing for real: ``MLOPS_FAULT_KILL_AT`` names step
boundaries (``stored``, ``cleaned@3``, …) at which the process kills itself with SIGKILL, as a
power cut or an OOM killer would; ``MLOPS_FAULT_PAUSE_AT`` names boundaries at which it creates
``$MLOPS_FAULT_RESUME_FILE.paused`` and waits until ``$MLOPS_FAULT_RESUME_FILE`` exists (a test
then does something to the world — drops a connection, starts another run — while it waits).
Unset (always, outside tests), they cost two dictionary lookups.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "MLOPS_FAULT_KILL_AT"
PAUSE_ENV = "MLOPS_FAULT_PAUSE_AT"
RESUME_ENV = "MLOPS_FAULT_RESUME_FILE"


def _listed(spec: str, name: str, batch: int | None) -> bool:
    for item in spec.split(","):
        point, _, at = item.strip().partition("@")
        if point == name and (not at or (batch is not None and at == str(batch))):
            return True
    return False


def checkpoint(name: str, batch: int | None = None) -> None:
    """Die here if ``MLOPS_FAULT_KILL_AT`` lists ``name`` (any batch) or ``name@batch``; wait here
    if ``MLOPS_FAULT_PAUSE_AT`` does."""
    spec = os.environ.get(FAULT_ENV)
    if spec and _listed(spec, name, batch):
        os.kill(os.getpid(), signal.SIGKILL)
    pause = os.environ.get(PAUSE_ENV)
    if pause and _listed(pause, name, batch):
        import time
        from pathlib import Path

        resume = Path(os.environ[RESUME_ENV])
        Path(f"{resume}.paused").touch()
        while not resume.exists():
            time.sleep(0.1)
