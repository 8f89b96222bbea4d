"""`mlops serve`: the inference API under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_cli.cli.common import err, settings


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.", envvar="MLOPS_API_HOST", show_envvar=True)] = None,
    port: Annotated[
        int | None, typer.Option(help="Port.", min=1, max=65535, envvar="MLOPS_API_PORT", show_envvar=True)
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes.", min=1, max=64, envvar="MLOPS_API_WORKERS", show_envvar=True)
    ] = None,
) -> None:
    """Serve the champion over HTTP: /predict, /model, /load_model, /health/*, /metrics."""
    import os

    import uvicorn

    from mlops_cli.netutil import ensure_port_free

    config = settings(api_host=host, api_port=port, api_workers=workers)
    ensure_port_free(config.api_host, config.api_port, "inference API", "MLOPS_API_PORT or --port")
    # Workers build the app from the environment: hand them the flags that way.
    os.environ["MLOPS_API_HOST"], os.environ["MLOPS_API_PORT"] = config.api_host, str(config.api_port)
    config.api_token_value()  # generate the token once, before workers race to do it
    err.print(
        f"inference API on http://{config.api_host}:{config.api_port} ({config.api_workers} worker(s)); "
        f"model {config.model_name}@{config.champion_alias} from {config.public_dict()['mlflow_tracking_uri']}",
        highlight=False,
    )
    uvicorn.run(
        "serving.app:create_app",
        factory=True,
        host=config.api_host,
        port=config.api_port,
        workers=config.api_workers,
        loop="uvloop",
        http="httptools",
        log_level="warning",
    )
