"""`mlops buckets create`: the S3/MinIO buckets MLflow and the API use."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_cli.cli.application import application
from mlops_cli.cli.options import JsonOption

group = typer.Typer(help="S3 / MinIO buckets.", no_args_is_help=True)


@group.command("create")
def create(
    ctx: typer.Context,
    endpoint_url: Annotated[
        str | None, typer.Option(help="S3 endpoint (MinIO).", envvar="MLFLOW_S3_ENDPOINT_URL", show_envvar=True)
    ] = None,
    bucket: Annotated[list[str] | None, typer.Option("--bucket", "-b", help="Bucket name (repeat).")] = None,
    wait: Annotated[float, typer.Option(min=0, help="Seconds to wait for the endpoint to answer.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Wait for the endpoint, create each bucket if missing; existing buckets are fine."""
    from mlops_cli.ops.buckets import DEFAULT_BUCKETS, create_buckets

    app = application(ctx)
    result = create_buckets(endpoint_url, list(bucket or DEFAULT_BUCKETS), wait)
    if as_json:
        app.print_json(result)
        return
    for name in result["created"]:
        app.line(f"created {name}")
    for name in result["existing"]:
        app.line(f"exists  {name}")
