"""`mlops train`: run batches through the loop and report each one."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from mlops_cli.cli.application import Application, application
from mlops_cli.cli.options import ReloadApiOption, SourceOption, WaitLockOption

if TYPE_CHECKING:
    from mlops_cli.config import Settings
    from mlops_cli.pipeline.reports import RunReport


class Runner(StrEnum):
    local = "local"
    airflow = "airflow"


def train(
    ctx: typer.Context,
    batch: Annotated[int | None, typer.Option("--batch", "-b", min=0, help="Process this batch only.")] = None,
    all_batches: Annotated[
        bool, typer.Option("--all", help="Process every remaining batch until the source is exhausted.")
    ] = False,
    restart: Annotated[
        bool, typer.Option("--restart", help="With --all: start a fresh dataset from the source's first batch.")
    ] = False,
    runner: Annotated[Runner, typer.Option(help="Where the steps run.", case_sensitive=False)] = Runner.local,
    source: SourceOption = None,
    reload_api: ReloadApiOption = True,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="Wait while the data API repeats a batch (its next one is not released yet); "
            "with --runner airflow: follow the runs to the end.",
        ),
    ] = True,
    wait_lock: WaitLockOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document: the batches and the end.")] = False,
) -> None:
    """Ingest, clean, decide, train, register and promote: batch by batch, each exactly once.

    A run first finishes whatever an interrupted run left half done, then asks the source for
    more. Only one process writes a data DB at a time.
    """
    app = application(ctx)
    if (batch is None) == (not all_batches):
        raise typer.BadParameter("give exactly one of --batch N or --all", param_hint="--batch/--all")
    if restart and not all_batches:
        raise typer.BadParameter("--restart goes with --all", param_hint="--restart")
    config = app.settings(data_source=source)
    if runner is Runner.airflow:
        _train_with_airflow(
            app, config, batch=batch, restart=restart, reload_api=reload_api, wait=wait, as_json=as_json
        )
        return
    from mlops_cli.pipeline.train import run

    with app.err.status("starting", spinner="dots") as status:
        report = run(
            config,
            batch=batch,
            restart=restart,
            wait=wait,
            wait_lock=wait_lock,
            reload_api=reload_api,
            progress=status.update,
        )
    show(app, report, as_json)


TASKS = (
    *("fetch", "clean", "validate", "decide", "train", "compare"),
    *("promote", "reject", "log_result", "trigger_next_batch"),
)
HEADERS = {"log_result": "log", "trigger_next_batch": "next"}  # the table fits 80 columns
MARKS = {
    "success": "[green]✓[/green]",
    "skipped": "[dim]–[/dim]",
    "failed": "[red]✗[/red]",
    "running": "[yellow]…[/yellow]",
    "up_for_retry": "[yellow]↻[/yellow]",
    "up_for_reschedule": "[yellow]⏲[/yellow]",
    "queued": "[dim]q[/dim]",
    "scheduled": "[dim]s[/dim]",
}


def _runs_table(runs: list) -> object:
    from rich.table import Table

    table = Table(title="Airflow runs of house_prices_training", title_justify="left")
    for name in ("run", "batch", "state", *TASKS):
        table.add_column(HEADERS.get(name, name))
    for run in runs:
        table.add_row(
            run.run_id[-26:],
            "-" if run.batch is None else str(run.batch),
            run.state,
            *(MARKS.get(run.tasks.get(t, ""), run.tasks.get(t, "") or "·") for t in TASKS),
        )
    return table


def _train_with_airflow(
    app: Application, config: Settings, *, batch: int | None, restart: bool, reload_api: bool, wait: bool, as_json: bool
) -> None:
    from rich.live import Live

    from mlops_cli.errors import MlopsError
    from mlops_cli.ops.airflow import run_via_airflow

    with Live(_runs_table([]), console=app.err, refresh_per_second=4, transient=as_json) as live:
        result = run_via_airflow(
            config,
            batch=batch,
            restart=restart,
            reload_api=reload_api,
            wait=wait,
            on_update=lambda runs: live.update(_runs_table(runs)),
        )
    if result.report is None:
        app.print_json({"run_id": result.run_id}) if as_json else app.out.print(f"triggered {result.run_id}")
        return
    show(app, result.report, as_json)
    if result.failed:
        raise MlopsError(f"Airflow run {result.failed[0]} failed", hint="see `mlops logs airflow` or the Airflow UI")


def show(app: Application, report: RunReport, as_json: bool) -> None:
    """Warnings on stderr; the report as one JSON document or as a table and a closing line."""
    if report.skipped_batches:
        numbers = ", ".join(map(str, report.skipped_batches))
        app.warn(f"the source never served batch {numbers}: recorded as skipped in the batch log")
    for message in sorted(set(report.warnings)):
        app.warn(message)
    if as_json:
        app.print_json(report.to_dict())
        return
    app.run_report(report)
