"""`mlops batches list|show`: the batch log — rows, drops by reason, the decision and why, drift."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mlops_cli.cli.application import application, money
from mlops_cli.cli.options import JsonOption

group = typer.Typer(help="The batch log: what each batch brought and what was decided.", no_args_is_help=True)


@group.command("list")
def list_batches(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every batch of the dataset: rows kept and dropped, retrained or not and why, the champion."""
    from mlops_cli.cli.train import batch_table
    from mlops_cli.pipeline.batches import summaries

    app = application(ctx)
    report = summaries(app.settings())
    if as_json:
        app.print_json([b.to_dict() for b in report.batches])
        return
    if not report.batches:
        app.out.print("no batches yet: `mlops train --all` takes them from the data source", highlight=False)
        return
    app.out.print(batch_table(report))
    app.out.print("`mlops batches show N`: every number of batch N.", highlight=False)


@group.command("show")
def show(
    ctx: typer.Context,
    batch: Annotated[int, typer.Argument(help="A batch number (see `mlops batches list`).", min=0)],
    as_json: JsonOption = False,
) -> None:
    """One batch in full: each answer (round) of it, its rows, drops by reason, decision, drift."""
    from mlops_cli.errors import MlopsError
    from mlops_cli.pipeline.batches import rounds as batch_rounds

    app = application(ctx)
    rounds = batch_rounds(app.settings(), batch)
    if not rounds:
        raise MlopsError(f"no batch {batch} in the batch log", hint="`mlops batches list` shows the batches")
    if as_json:
        app.print_json(rounds)
        return
    from rich.table import Table

    for number, r in enumerate(rounds, 1):
        if len(rounds) > 1:
            app.out.print(f"[bold]answer {number} of {len(rounds)}[/bold] (round {r['id']})")
        grid = Table.grid(padding=(0, 2))  # a long value wraps under itself, not under the keys
        grid.add_column(justify="right", style="bold", no_wrap=True)
        grid.add_column()
        for key, value in _lines(r):
            grid.add_row(key, value)
        app.out.print(grid, highlight=False)


def _lines(r: dict[str, Any]) -> list[tuple[str, str]]:
    def when(value: Any) -> str:
        return value.isoformat(timespec="seconds") if value is not None else "-"

    dropped = r.get("dropped") or {}
    drift = r.get("drift") or {}
    return [
        ("batch", f"{r['batch']} ({r['state']})"),
        ("received", f"{when(r['received_at'])} from {r['source'] or '-'}"),
        ("finished", when(r["finished_at"])),
        (
            "rows",
            f"{r['rows_received'] or 0:,} received, {r['rows_kept'] or 0:,} kept, {r['rows_dropped'] or 0:,} dropped",
        ),
        ("dropped", ", ".join(f"{reason} {count:,}" for reason, count in sorted(dropped.items())) or "-"),
        ("split", f"{r['rows_train'] or 0:,} train, {r['rows_test'] or 0:,} test"),
        (
            "new share",
            "-"
            if r["new_share"] is None
            else f"{r['new_share']:.1%} ({r['new_rows'] or 0:,} of {r['total_rows'] or 0:,} rows)",
        ),
        (
            "drift",
            "-"
            if r["drift_score"] is None
            else f"{r['drift_score']:.3f}  "
            + ", ".join(f"{k} {v:.3f}" for k, v in sorted(drift.items()) if isinstance(v, (int, float))),
        ),
        ("retrained", "yes" if r["retrained"] else "no"),
        ("why", r["reason"] or "-"),
        ("version", f"v{r['version']} (RMSE {money(r['rmse'])}, run {r['run_id']})" if r["version"] else "-"),
        ("promoted", "yes" if r["promoted"] else "no"),
        ("champion", f"v{r['champion_version']}" if r["champion_version"] else "-"),
        *((("error", r["error"]),) if r.get("error") else ()),
    ]
