"""Option types more than one command takes, defined once."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
WaitLockOption = Annotated[
    bool, typer.Option("--wait-lock", help="Queue behind another process writing the same data DB.")
]
ReloadApiOption = Annotated[
    bool, typer.Option("--reload-api/--no-reload-api", help="Ask the inference API to load a new champion.")
]
SourceOption = Annotated[
    str | None,
    typer.Option(help="generator, csv:PATH or a data API URL.", envvar="MLOPS_DATA_SOURCE", show_envvar=True),
]
