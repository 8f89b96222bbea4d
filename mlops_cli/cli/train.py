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
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="With --runner airflow: follow the runs to the end.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array, one object per batch.")] = False,
) -> None:
    """Ingest, clean, decide, train, register and promote: batch by batch."""
    if (batch is None) == (not all_batches):
        raise typer.BadParameter("give exactly one of --batch N or --all", param_hint="--batch/--all")
    if restart and not all_batches:
        raise typer.BadParameter("--restart goes with --all", param_hint="--restart")
    config = settings(data_source=source)
    if runner is Runner.airflow:
        _train_with_airflow(config, batch, wait, as_json)
        return
    from mlops_cli.loop import run_batches

    with err.status("starting", spinner="dots") as status:

        def progress(text: str) -> None:
            status.update(text)

        report = run_batches(config, batch=batch, restart=restart, progress=progress, reload_api=reload_api)
    shown_warnings = sorted({w for b in report.batches for w in b.warnings})
    for message in shown_warnings:
        warn(message)
    rows = [{key: b.to_dict()[key] for key in SUMMARY_KEYS} for b in report.batches]
    if as_json:
        print_json(rows)
        return
    render(report)


SUMMARY_KEYS = ("batch", "rows_received", "rows_kept", "retrained", "reason", "rmse", "version", "champion_version")
TASKS = ("ingest", "clean", "decide", "train", "promote", "reload_api", "trigger_next_batch")
MARKS = {
    "success": "[green]✓[/green]",
    "skipped": "[dim]–[/dim]",
    "failed": "[red]✗[/red]",
    "running": "[yellow]…[/yellow]",
    "up_for_retry": "[yellow]↻[/yellow]",
    "queued": "[dim]q[/dim]",
    "scheduled": "[dim]s[/dim]",
}


def _runs_table(runs) -> object:  # noqa: ANN001 - RunView list
    from rich.table import Table

    table = Table(title="Airflow runs of house_prices_training", title_justify="left")
    for name in ("run", "batch", "state", *TASKS):
        table.add_column(name)
    for run in runs:
        table.add_row(
            run.run_id[-26:],
            "-" if run.batch is None else str(run.batch),
            run.state,
            *(MARKS.get(run.tasks.get(t, ""), run.tasks.get(t, "") or "·") for t in TASKS),
        )
    return table


def _train_with_airflow(config, batch: int | None, wait: bool, as_json: bool) -> None:  # noqa: ANN001
    from rich.live import Live

    from mlops_cli.airflow_runner import run_via_airflow
    from mlops_cli.errors import MlopsError
    from mlops_cli.loop import BatchReport, RunReport
    from mlops_cli.storage import batch_log_rows, engine_for

    with Live(_runs_table([]), console=err, refresh_per_second=4, transient=as_json) as live:
        result = run_via_airflow(config, batch, wait, on_update=lambda runs: live.update(_runs_table(runs)))
    if not wait:
        print_json({"run_id": result["run_id"]}) if as_json else out.print(f"triggered {result['run_id']}")
        return
    logged = {row["batch"]: row for row in batch_log_rows(engine_for(config))}
    reports = []
    for number in result["batches"]:
        row = logged.get(number, {})
        reports.append(
            BatchReport(
                number,
                row.get("rows_received") or 0,
                row.get("rows_kept") or 0,
                row.get("rows_dropped") or 0,
                row.get("dropped") or {},
                bool(row.get("retrained")),
                row.get("reason") or "",
                row.get("rmse"),
                row.get("version"),
                row.get("champion_version"),
            )
        )
    report = RunReport(reports, "the data source has no more batches" if result["exhausted"] else None)
    if as_json:
        print_json([{k: b.to_dict()[k] for k in SUMMARY_KEYS} for b in reports])
    else:
        render(report)
    if result["failed"]:
        raise MlopsError(f"Airflow run {result['failed'][0]} failed", hint="see `mlops logs airflow` or the Airflow UI")


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
