"""`mlops ui` as typed: a taken port is one clear line naming the setting that moves it."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.conftest import run_mlops


def test_a_taken_port_is_named(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_mlops("ui", "--port", str(port), "--host", "127.0.0.1")
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use; the UI wanted it — choose another with MLOPS_UI_PORT" in (
        result.stderr
    )
