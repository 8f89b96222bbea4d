"""`mlops batches list|show`: the batch log — rows, drops by reason, the decision and why, drift."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mlops_cli.cli.application import application
from mlops_cli.cli.options import JsonOption

group = typer.Typer(help="The batch log: what each batch brought and what was decided.", no_args_is_help=True)


@group.command("list")
def list_batches(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every batch of the dataset: rows kept and dropped, retrained or not and why, the champion."""
    from mlops_cli.pipeline.batches import summaries

    app = application(ctx)
    report = summaries(app.settings())
    if as_json:
        app.print_json([b.to_dict() for b in report.batches])
        return
    if not report.batches:
        app.out.print("no batches yet: `mlops train --all` takes them from the data source", highlight=False)
        return
    app.out.print(app.batch_table(report))
    app.out.print("`mlops batches show N`: every number of batch N.", highlight=False)


@group.command("show")
def show(
    ctx: typer.Context,
    batch: Annotated[int, typer.Argument(help="A batch number (see `mlops batches list`).", min=0)],
    as_json: JsonOption = False,
) -> None:
    """One batch in full: its decision and why, the champion's error on it, the promotion, the
    validation report (schema, quality, volume, drift, new categories, sufficiency), each answer."""
    from mlops_cli.errors import MlopsError
    from mlops_cli.pipeline.batches import record

    app = application(ctx)
    found, rounds = record(app.settings(), batch)
    if found is None:
        raise MlopsError(f"no batch {batch} in the batch log", hint="`mlops batches list` shows the batches")
    if as_json:
        app.print_json({**found.to_dict(), "rounds": rounds})
        return
    from mlops_cli.pipeline.records import record_lines

    _grid(app, record_lines(found))
    for number, r in enumerate(rounds, 1):
        app.out.print(f"[bold]answer {number} of {len(rounds)}[/bold] (round {r['id']})", highlight=False)
        _grid(app, _round_lines(r))


def _grid(app: Any, lines: list[tuple[str, str]]) -> None:
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))  # a long value wraps under itself, not under the keys
    grid.add_column(justify="right", style="bold", no_wrap=True)
    grid.add_column()
    for key, value in lines:
        grid.add_row(key, value)
    app.out.print(grid, highlight=False)


def _round_lines(r: dict[str, Any]) -> list[tuple[str, str]]:
    def when(value: Any) -> str:
        return value.isoformat(timespec="seconds") if value is not None else "-"

    return [
        ("state", r["state"]),
        ("received", f"{when(r['received_at'])} from {r['source'] or '-'}"),
        ("finished", when(r["finished_at"])),
        ("rows", f"{r['rows_received'] or 0:,} in the answer, {r['rows_new'] or 0:,} new"),
        ("split", f"{r['rows_train'] or 0:,} train, {r['rows_test'] or 0:,} test"),
        *((("error", r["error"]),) if r.get("error") else ()),
    ]
