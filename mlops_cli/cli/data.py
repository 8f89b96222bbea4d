"""`mlops data serve|reset`: the data API over any source."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_cli.cli.common import err, out, print_json, settings

app = typer.Typer(help="The data API (built-in generator, CSV/Parquet file or a remote API).", no_args_is_help=True)


@app.command("serve")
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address.", envvar="MLOPS_DATA_API_HOST", show_envvar=True)
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port.", min=1, max=65535, envvar="MLOPS_DATA_API_PORT", show_envvar=True)
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="generator, csv:PATH or a data API URL.", envvar="MLOPS_DATA_SOURCE", show_envvar=True),
    ] = None,
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
    import uvicorn

    from mlops_cli.data_api import create_app
    from mlops_cli.netutil import ensure_port_free
    from mlops_cli.sources import open_source

    config = settings(
        data_api_host=host,
        data_api_port=port,
        data_source=source,
        data_api_release_window=release_window,
        data_api_sample_share=sample_share,
    )
    data_source = open_source(config)
    ensure_port_free(config.data_api_host, config.data_api_port, "data API", "MLOPS_DATA_API_PORT or --port")
    app = create_app(
        data_source,
        groups=config.data_groups,
        release_window=config.data_api_release_window,
        sample_share=config.data_api_sample_share,
        cursor_file=config.ensure_home() / "data_api_cursors.json",
    )
    window = f", a batch every {config.data_api_release_window:g}s" if config.data_api_release_window else ""
    err.print(
        f"serving {data_source.name} on http://{config.data_api_host}:{config.data_api_port}{window} "
        "(each group goes on where it stopped; `mlops data reset` starts it over)",
        highlight=False,
    )
    uvicorn.run(app, host=config.data_api_host, port=config.data_api_port, log_level="warning")


@app.command("reset")
def reset(
    url: Annotated[
        str | None, typer.Option(help="The data API (default: MLOPS_DATA_SOURCE if a URL, else the local one).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Restart data generation: the next batch served is batch 0."""
    from mlops_cli.sources import HttpSource

    config = settings()
    if url is None:
        url = (
            config.data_source
            if config.data_source.startswith("http")
            else (f"http://{config.data_api_host}:{config.data_api_port}")
        )
    HttpSource(url, config).restart()
    if as_json:
        print_json({"url": url, "group_number": config.data_group, "day": config.data_day, "next_batch": 0})
        return
    day = f", {config.data_day}" if config.data_day else ""
    out.print(f"restarted {url} (group {config.data_group}{day}): next batch is 0", highlight=False)
