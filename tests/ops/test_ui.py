"""`mlops ui` becomes Streamlit on the settings' port, or says why it cannot."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mlops_cli.config import load_settings
from mlops_cli.errors import MlopsError
from mlops_cli.ops import ui
from mlops_cli.ops.netutil import free_port


def test_the_ui_execs_streamlit_on_its_port_with_the_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict = {}
    monkeypatch.setattr(ui.os, "execve", lambda path, args, env: seen.update(path=path, args=args, env=env))
    port = free_port()
    said: list[str] = []
    settings = load_settings(ui_port=port)
    ui.run_ui(settings, said.append)
    args = seen["args"]
    assert args[1:4] == ["-m", "streamlit", "run"] and args[4].endswith("ui/app.py")
    assert args[args.index("--server.port") + 1] == str(port) and seen["env"]["MLOPS_HOME"] == str(home)
    assert said == [f"UI on http://{settings.api_host}:{port} (API {settings.api_url})"]


def test_a_taken_port_is_refused_before_streamlit_starts(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui.os, "execve", lambda *a: pytest.fail("started on a taken port"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(MlopsError, match="already in use; the UI wanted it"):
            ui.run_ui(load_settings(ui_port=taken.getsockname()[1], api_host="127.0.0.1"), print)
