"""`mlops models list|show`: registered versions, aliases and metrics."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_cli.cli.application import application, money
from mlops_cli.cli.options import JsonOption

group = typer.Typer(help="Registered model versions.", no_args_is_help=True)


@group.command("list")
def list_models(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every registered version with aliases, RMSE, batches used and creation time."""
    from rich.table import Table

    from mlops_cli.registry.models import list_versions

    app = application(ctx)
    versions = list_versions(app.settings())
    if as_json:
        app.print_json(versions)
        return
    if not versions:
        app.out.print("no registered versions yet: `mlops train --all` trains some", highlight=False)
        return
    table = Table(title=versions[0]["name"], title_justify="left")
    for name in ("version", "aliases", "RMSE", "MAE", "R²", "batches", "rows", "created"):
        table.add_column(name, justify="left" if name in ("aliases", "batches", "created") else "right")
    for v in versions:
        table.add_row(
            f"v{v['version']}",
            ", ".join(v["aliases"]),
            money(v["rmse"]),
            money(v["mae"]),
            "-" if v["r2"] is None else f"{v['r2']:.3f}",
            _batches(v["batches"]),
            str(v["rows_train"] or "-"),
            v["created"] or "-",
        )
    app.out.print(table)


def _batches(batches: list[int]) -> str:
    if not batches:
        return "-"
    if batches == list(range(batches[0], batches[-1] + 1)) and len(batches) > 2:
        return f"{batches[0]}-{batches[-1]}"
    return ",".join(map(str, batches))


@group.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="A version number (3 or v3) or an alias (champion).")],
    as_json: JsonOption = False,
) -> None:
    """One version in detail: aliases, metrics, params, batches, run."""
    from mlops_cli.registry.models import show_version

    app = application(ctx)
    info = show_version(app.settings(), ref)
    if as_json:
        app.print_json(info)
        return
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
        elif isinstance(value, list):
            value = ", ".join(map(str, value)) or "-"
        app.out.print(f"[bold]{key:>12}[/bold]  {value}", highlight=False)
