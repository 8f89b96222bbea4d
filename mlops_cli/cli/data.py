"""`mlops data serve|reset`: the data API over any source."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_cli.cli.application import application
from mlops_cli.cli.options import JsonOption, SourceOption

group = typer.Typer(help="The data API (built-in generator, CSV/Parquet file or a remote API).", no_args_is_help=True)


@group.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Bind address.", envvar="MLOPS_DATA_API_HOST", show_envvar=True)
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port.", min=1, max=65535, envvar="MLOPS_DATA_API_PORT", show_envvar=True)
    ] = None,
    source: SourceOption = None,
    release_window: Annotated[
        float | None,
        typer.Option(
            help="Seconds a batch stays current: calls inside the window answer it again (the course server: 300).",
            min=0,
            envvar="MLOPS_DATA_API_RELEASE_WINDOW",
            show_envvar=True,
        ),
    ] = None,
    sample_share: Annotated[
        float | None,
        typer.Option(
            help="Share of the batch in each answer, a fresh random sample each time (the course server: 0.1).",
            min=0.0001,
            max=1,
            envvar="MLOPS_DATA_API_SAMPLE_SHARE",
            show_envvar=True,
        ),
    ] = None,
) -> None:
    """Serve batches with the course contract: /data, /restart_data_generation, /health, /metrics."""
    from mlops_cli.ops.data import serve as run_server

    app = application(ctx)
    config = app.settings(
        data_api_host=host,
        data_api_port=port,
        data_source=source,
        data_api_release_window=release_window,
        data_api_sample_share=sample_share,
    )
    run_server(config, announce=lambda text: app.err.print(text, highlight=False))


@group.command("reset")
def reset(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option(help="The data API (default: MLOPS_DATA_SOURCE if a URL, else the local one).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Restart data generation: the next batch served is batch 0."""
    from mlops_cli.ops.data import reset as reset_server

    app = application(ctx)
    done = reset_server(app.settings(), url)
    if as_json:
        app.print_json(done)
        return
    day = f", {done['day']}" if done["day"] else ""
    app.line(f"restarted {done['url']} (group {done['group_number']}{day}): next batch is 0")
