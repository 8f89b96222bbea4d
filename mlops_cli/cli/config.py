"""`mlops config show`: the settings in force, secrets masked."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_cli.cli.common import out, print_json, settings

app = typer.Typer(help="Settings (MLOPS_* env vars, mlops.toml, flags).", no_args_is_help=True)


@app.command("show")
def show(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False) -> None:
    """Every setting with its value; passwords and tokens masked."""
    from mlops_cli.settings import config_file

    values = settings().public_dict()
    if as_json:
        print_json(values)
        return
    source = config_file()
    out.print(f"[dim]config file: {source} ({'found' if source.exists() else 'not found'})[/dim]")
    for key, value in values.items():
        out.print(f"[bold]MLOPS_{key.upper():<26}[/bold] {value}", highlight=False)
