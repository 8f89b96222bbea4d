"""`mlops dashboard import|show`: the Grafana dashboard of the inference API."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_cli.cli.application import application
from mlops_cli.cli.options import JsonOption

group = typer.Typer(
    help="The Grafana dashboard (requests, errors, latency, predictions, model version).", no_args_is_help=True
)


@group.command("import")
def import_(
    ctx: typer.Context,
    grafana_url: Annotated[str, typer.Option(help="Grafana.", envvar="MLOPS_GRAFANA_URL", show_envvar=True)] = (
        "http://127.0.0.1:3000"
    ),
    prometheus_url: Annotated[
        str,
        typer.Option(
            help="Prometheus as Grafana reaches it (for a new datasource).",
            envvar="MLOPS_GRAFANA_PROMETHEUS_URL",
            show_envvar=True,
        ),
    ] = "http://127.0.0.1:9090",
    token: Annotated[
        str | None, typer.Option(help="Service-account token.", envvar="MLOPS_GRAFANA_TOKEN", show_envvar=True)
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="Basic-auth user.", envvar="MLOPS_GRAFANA_USER", show_envvar=True)
    ] = None,
    password: Annotated[
        str | None, typer.Option(help="Basic-auth password.", envvar="MLOPS_GRAFANA_PASSWORD", show_envvar=True)
    ] = None,
    folder: Annotated[str, typer.Option(help="Grafana folder for the dashboard.")] = "mlops",
    as_json: JsonOption = False,
) -> None:
    """Import (overwrite) the dashboard, creating the Prometheus datasource and folder if missing."""
    from mlops_cli.ops.dashboard import import_dashboard

    if user and not password:
        raise typer.BadParameter("--user needs --password (or MLOPS_GRAFANA_PASSWORD)", param_hint="--password")
    app = application(ctx)
    result = import_dashboard(grafana_url, prometheus_url, folder, token, user, password)
    if as_json:
        app.print_json(result)
        return
    app.line(f"dashboard imported: {result['url']} (datasource {result['datasource']}, folder {result['folder']})")


@group.command("show")
def show() -> None:
    """Print the dashboard JSON (as imported and as provisioned on Kubernetes)."""
    from mlops_cli.ops.dashboard import dashboard_json

    print(dashboard_json(), end="")
