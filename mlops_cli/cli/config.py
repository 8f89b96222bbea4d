"""`mlops config show`: the settings in force, secrets masked."""

from __future__ import annotations

import typer

from mlops_cli.cli.application import application
from mlops_cli.cli.options import JsonOption

group = typer.Typer(help="Settings (MLOPS_* env vars, mlops.toml, flags).", no_args_is_help=True)


@group.command("show")
def show(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every setting with its value; passwords and tokens masked."""
    from mlops_cli.config import config_file

    app = application(ctx)
    values = app.settings().public_dict()
    if as_json:
        app.print_json(values)
        return
    source = config_file()
    app.out.print(f"[dim]config file: {source} ({'found' if source.exists() else 'not found'})[/dim]")
    for key, value in values.items():
        app.out.print(f"[bold]MLOPS_{key.upper():<26}[/bold] {value}", highlight=False)
