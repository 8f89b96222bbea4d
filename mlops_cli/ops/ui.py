"""`mlops ui`: the Streamlit app in the foreground, on the settings' host and port."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from mlops_cli.config import Settings


def run_ui(settings: Settings, announce: Callable[[str], None]) -> NoReturn:
    """Become Streamlit (exec): signals — a pod's SIGTERM, `mlops down` — reach it directly and
    nothing is left behind. MlopsError when the UI extra is missing or the port is taken."""
    from mlops_cli.errors import MlopsError
    from mlops_cli.ops.netutil import ensure_port_free
    from mlops_cli.ops.services import streamlit_command

    command = streamlit_command(settings)
    if isinstance(command, str):
        raise MlopsError(command)
    ensure_port_free(settings.api_host, settings.ui_port, "UI", "MLOPS_UI_PORT or --port")
    announce(f"UI on http://{settings.api_host}:{settings.ui_port} (API {settings.api_url})")
    os.execve(command[0], command, {**os.environ, "MLOPS_HOME": str(settings.home)})
