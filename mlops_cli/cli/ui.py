"""`mlops ui`: the Streamlit app."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_cli.cli.common import err, settings


def ui(
    port: Annotated[
        int | None, typer.Option(help="Port.", min=1, max=65535, envvar="MLOPS_UI_PORT", show_envvar=True)
    ] = None,
    host: Annotated[str | None, typer.Option(help="Bind address.", envvar="MLOPS_API_HOST", show_envvar=True)] = None,
) -> None:
    """Predict, explore model history and watch the data in the browser."""
    import os
    import subprocess
    import sys

    from mlops_cli.errors import MlopsError
    from mlops_cli.netutil import ensure_port_free
    from mlops_cli.stack import ui_entrypoint

    config = settings(ui_port=port, api_host=host)
    app = ui_entrypoint()
    if app is None:
        raise MlopsError("the Streamlit UI is not installed", hint="pip install 'mlops[ui]'")
    ensure_port_free(config.api_host, config.ui_port, "UI", "MLOPS_UI_PORT or --port")
    err.print(f"UI on http://{config.api_host}:{config.ui_port} (API {config.api_url})", highlight=False)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        config.api_host,
        "--server.port",
        str(config.ui_port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    raise typer.Exit(subprocess.call(command, env={**os.environ, "MLOPS_HOME": str(config.home)}))
