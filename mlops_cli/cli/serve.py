"""`mlops serve`: the inference API under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_cli.cli.application import application


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address.", envvar="MLOPS_API_HOST", show_envvar=True)] = None,
    port: Annotated[
        int | None, typer.Option(help="Port.", min=1, max=65535, envvar="MLOPS_API_PORT", show_envvar=True)
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes.", min=1, max=64, envvar="MLOPS_API_WORKERS", show_envvar=True)
    ] = None,
) -> None:
    """Serve the champion over HTTP: /predict, /model, /load_model, /health/*, /metrics."""
    from serving.serve import serve as run_server

    app = application(ctx)
    run_server(
        app.settings(api_host=host, api_port=port, api_workers=workers),
        announce=lambda text: app.err.print(text, highlight=False),
    )
