"""`mlops buckets create`: the S3/MinIO buckets MLflow and the API use."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_cli.cli.common import out, print_json

app = typer.Typer(help="S3 / MinIO buckets.", no_args_is_help=True)


@app.command("create")
def create(
    endpoint_url: Annotated[
        str | None, typer.Option(help="S3 endpoint (MinIO).", envvar="MLFLOW_S3_ENDPOINT_URL", show_envvar=True)
    ] = None,
    bucket: Annotated[list[str] | None, typer.Option("--bucket", "-b", help="Bucket name (repeat).")] = None,
    wait: Annotated[float, typer.Option(min=0, help="Seconds to wait for the endpoint to answer.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Wait for the endpoint, create each bucket if missing; existing buckets are fine."""
    from mlops_cli.buckets import DEFAULT_BUCKETS, create_buckets

    result = create_buckets(endpoint_url, list(bucket or DEFAULT_BUCKETS), wait)
    if as_json:
        print_json(result)
        return
    for name in result["created"]:
        out.print(f"created {name}", highlight=False)
    for name in result["existing"]:
        out.print(f"exists  {name}", highlight=False)
