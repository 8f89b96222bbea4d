"""`mlops loadtest`: Locust against the inference API, with thresholds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlops_cli.cli.application import application
from mlops_cli.cli.options import JsonOption


def loadtest(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="The inference API.", envvar="MLOPS_API_URL", show_envvar=True)
    ] = None,
    users: Annotated[int, typer.Option(min=1, max=10_000, help="Concurrent simulated users.")] = 10,
    spawn_rate: Annotated[float, typer.Option(min=0.1, help="Users started per second.")] = 5.0,
    duration: Annotated[str, typer.Option(help="How long: 30s, 2m, 1m30s.")] = "30s",
    max_p95_ms: Annotated[float | None, typer.Option(min=0, help="Fail when p95 latency exceeds this.")] = None,
    max_error_rate: Annotated[
        float | None, typer.Option(min=0, max=1, help="Fail when the share of failed requests exceeds this.")
    ] = None,
    html: Annotated[Path | None, typer.Option(help="Also write Locust's HTML report here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Load-test /predict with realistic listings; exits 1 when a threshold is broken."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from mlops_cli.ops.loadtest import parse_duration, run_loadtest

    try:
        parse_duration(duration)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--duration") from None
    app = application(ctx)
    target = host or app.settings().api_url
    with Progress(
        TextColumn("load test"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}s"),
        TimeRemainingColumn(),
        console=app.err,
        transient=True,
        disable=not app.err.is_terminal,  # piped: no bar, and no blank line where it was
    ) as progress:
        bar = progress.add_task("load", total=parse_duration(duration))
        result = run_loadtest(
            target,
            users,
            spawn_rate,
            duration,
            html,
            max_p95_ms,
            max_error_rate,
            on_tick=lambda done, total: progress.update(bar, completed=done),
        )
    if as_json:
        app.print_json(result.to_dict())
    else:
        from rich.table import Table

        table = Table(
            title=f"load test of {result.host}: {result.users} users, {result.duration_s}s", title_justify="left"
        )
        for name in ("endpoint", "requests", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms"):
            table.add_column(name, justify="left" if name == "endpoint" else "right")
        for row in [*result.endpoints, result.total]:
            table.add_row(
                row.name,
                str(row.requests),
                str(row.failures),
                f"{row.rps:.1f}",
                f"{row.p50_ms:g}",
                f"{row.p95_ms:g}",
                f"{row.p99_ms:g}",
            )
        app.out.print(table)
        for failure in result.failures:
            app.line(f"failure: {failure}")
        if result.html:
            app.line(f"HTML report: {result.html}")
    if result.violations:
        from mlops_cli.errors import MlopsError

        raise MlopsError("load test failed: " + "; ".join(result.violations))
