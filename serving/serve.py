"""`mlops serve`: the inference API under uvicorn, its workers building the app from the environment."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlops_cli.config import Settings


def serve(settings: Settings, announce: Callable[[str], None] | None = None) -> None:
    """Run the API on the settings' host and port until stopped."""
    import uvicorn

    from mlops_cli.ops.netutil import ensure_port_free

    ensure_port_free(settings.api_host, settings.api_port, "inference API", "MLOPS_API_PORT or --port")
    # Workers build the app from the environment: hand them the flags that way.
    os.environ["MLOPS_API_HOST"], os.environ["MLOPS_API_PORT"] = settings.api_host, str(settings.api_port)
    settings.api_token_value()  # generate the token once, before workers race to do it
    if announce:
        tracking = settings.public_dict()["mlflow_tracking_uri"]
        announce(
            f"inference API on http://{settings.api_host}:{settings.api_port} ({settings.api_workers} worker(s)); "
            f"model {settings.model_name}@{settings.champion_alias} from {tracking}"
        )
    uvicorn.run(
        "serving.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=settings.api_access_log,  # one line per request: off by default (MLOPS_API_ACCESS_LOG)
        timeout_keep_alive=settings.api_keep_alive,  # an idle connection is closed after this (MLOPS_API_KEEP_ALIVE)
        limit_concurrency=settings.api_max_connections,  # past it uvicorn answers 503 (MLOPS_API_MAX_CONNECTIONS)
    )
