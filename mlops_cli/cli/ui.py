"""`mlops ui`: the Streamlit app."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_cli.cli.application import application


def ui(
    ctx: typer.Context,
    port: Annotated[
        int | None, typer.Option(help="Port.", min=1, max=65535, envvar="MLOPS_UI_PORT", show_envvar=True)
    ] = None,
    host: Annotated[str | None, typer.Option(help="Bind address.", envvar="MLOPS_API_HOST", show_envvar=True)] = None,
) -> None:
    """Predict, explore model history and watch the data in the browser."""
    import os

    from mlops_cli.errors import MlopsError
    from mlops_cli.ops.netutil import ensure_port_free
    from mlops_cli.ops.services import streamlit_command

    app = application(ctx)
    config = app.settings(ui_port=port, api_host=host)
    command = streamlit_command(config)
    if isinstance(command, str):
        raise MlopsError(command)
    ensure_port_free(config.api_host, config.ui_port, "UI", "MLOPS_UI_PORT or --port")
    app.err.print(f"UI on http://{config.api_host}:{config.ui_port} (API {config.api_url})", highlight=False)
    # Become Streamlit: signals (a pod's SIGTERM, `mlops down`) reach it directly, nothing is left behind.
    os.execve(command[0], command, {**os.environ, "MLOPS_HOME": str(config.home)})
