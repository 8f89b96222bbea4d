"""`mlops train`: run batches through the loop and report each one."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from mlops_cli.cli.common import err, money, out, print_json, settings, warn


class Runner(StrEnum):
    local = "local"
    airflow = "airflow"


def train(
    batch: Annotated[int | None, typer.Option("--batch", "-b", min=0, help="Process this batch only.")] = None,
    all_batches: Annotated[
        bool, typer.Option("--all", help="Process every remaining batch until the source is exhausted.")
    ] = False,
    restart: Annotated[bool, typer.Option("--restart", help="With --all: start again from batch 0.")] = False,
    runner: Annotated[Runner, typer.Option(help="Where the steps run.", case_sensitive=False)] = Runner.local,
    source: Annotated[
        str | None,
        typer.Option(help="generator, csv:PATH or a data API URL.", envvar="MLOPS_DATA_SOURCE", show_envvar=True),
    ] = None,
    reload_api: Annotated[
        bool, typer.Option("--reload-api/--no-reload-api", help="Ask the inference API to load a new champion.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array, one object per batch.")] = False,
) -> None:
    """Ingest, clean, decide, train, register and promote: batch by batch."""
    if (batch is None) == (not all_batches):
        raise typer.BadParameter("give exactly one of --batch N or --all", param_hint="--batch/--all")
    if restart and not all_batches:
        raise typer.BadParameter("--restart goes with --all", param_hint="--restart")
    if runner is Runner.airflow:
        from mlops_cli.errors import MlopsError

        raise MlopsError("the airflow runner is not part of this build yet", hint="use --runner local (the default)")
    from mlops_cli.loop import run_batches

    config = settings(data_source=source)
    with err.status("starting", spinner="dots") as status:

        def progress(text: str) -> None:
            status.update(text)

        report = run_batches(config, batch=batch, restart=restart, progress=progress, reload_api=reload_api)
    shown_warnings = sorted({w for b in report.batches for w in b.warnings})
    for message in shown_warnings:
        warn(message)
    rows = [
        {
            key: b.to_dict()[key]
            for key in (
                "batch",
                "rows_received",
                "rows_kept",
                "retrained",
                "reason",
                "rmse",
                "version",
                "champion_version",
            )
        }
        for b in report.batches
    ]
    if as_json:
        print_json(rows)
        return
    render(report)


def render(report) -> None:  # noqa: ANN001 - a RunReport, imported lazily
    from rich.table import Table

    if report.batches:
        table = Table(title="Batches", title_justify="left")
        for name in ("batch", "rows in", "kept", "dropped", "retrained", "why", "RMSE", "version", "champion"):
            table.add_column(name, justify="right" if name not in ("retrained", "why") else "left")
        for b in report.batches:
            table.add_row(
                str(b.batch),
                str(b.rows_received),
                str(b.rows_kept),
                str(b.rows_dropped),
                "[green]yes[/green]" if b.retrained else "no",
                b.reason,
                money(b.rmse),
                f"v{b.version}" if b.version else "-",
                f"v{b.champion_version}" if b.champion_version else "-",
            )
        out.print(table)
    if report.exhausted is not None:
        done = "source exhausted" if report.batches else "no new batches: source exhausted"
        out.print(f"{done} ({report.exhausted})", highlight=False)
        if not report.batches:
            out.print("`mlops train --all --restart` starts again from batch 0.", highlight=False)
    champion = next((b.champion_version for b in reversed(report.batches) if b.champion_version), None)
    if champion:
        out.print(f"champion: v{champion}  (`mlops models list` shows every version)", highlight=False)
