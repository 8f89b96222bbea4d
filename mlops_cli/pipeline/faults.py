"""A fault hook for testing exactly-once processing for real: ``MLOPS_FAULT_KILL_AT`` names step
boundaries (``stored``, ``cleaned@3``, …) at which the process kills itself with SIGKILL, as a
power cut or an OOM killer would. Unset (always, outside tests), it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "MLOPS_FAULT_KILL_AT"


def checkpoint(name: str, batch: int | None = None) -> None:
    """Die here if ``MLOPS_FAULT_KILL_AT`` lists ``name`` (any batch) or ``name@batch``."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for item in spec.split(","):
        point, _, at = item.strip().partition("@")
        if point == name and (not at or (batch is not None and at == str(batch))):
            os.kill(os.getpid(), signal.SIGKILL)
