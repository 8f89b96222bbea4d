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
    from mlops_cli.ops.ui import run_ui

    app = application(ctx)
    run_ui(app.settings(ui_port=port, api_host=host), lambda text: app.err.print(text, highlight=False))
