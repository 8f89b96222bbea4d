"""`mlops models list|show|compare`: registered versions, aliases and metrics."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mlops_cli.cli.application import application, money
from mlops_cli.cli.options import JsonOption
from mlops_cli.registry.info import HEADINGS, KINDS, LABELS, LISTED, batch_range, cell

group = typer.Typer(help="Registered model versions.", no_args_is_help=True)


@group.command("list")
def list_models(
    ctx: typer.Context,
    score: Annotated[
        bool, typer.Option("--score", help="Score every version on today's test set (loads each model once).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Every registered version: aliases, model, RMSE at training and today, batches, rows."""
    from rich import box
    from rich.table import Table

    from mlops_cli.pipeline.scores import versions_today

    app = application(ctx)
    versions = versions_today(app.settings(), compute=score)
    if as_json:
        app.print_json(versions)
        return
    if not versions:
        app.out.print("no registered versions yet: `mlops train --all` trains some", highlight=False)
        return
    table = Table(
        title=versions[0]["name"], title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    for name in LISTED:
        table.add_column(HEADINGS[name], justify="right" if KINDS[name] in ("money", "count") else "left")
    for v in versions:
        table.add_row(*(cell(name, v[name], narrow=True) for name in LISTED))
    app.out.print(table)
    note = "at training: on its own test rows when trained; today: on every test row stored now"
    missing = any(v["rmse_today"] is None for v in versions)
    app.out.print(note + (" (`--score` fills the blanks)." if missing else "."), highlight=False)


@group.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="A version number (3 or v3) or an alias (champion).")],
    as_json: JsonOption = False,
) -> None:
    """One version in detail: aliases, description, metrics, params, batches, run."""
    from rich.table import Table

    from mlops_cli.pipeline.scores import rmse_today
    from mlops_cli.registry.models import show_version

    app = application(ctx)
    settings = app.settings()
    info = show_version(settings, ref)
    info["rmse_today"] = rmse_today(settings, info["version"], info["run_id"])  # remembered: no model loaded
    if as_json:
        app.print_json(info)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(justify="right", style="bold", no_wrap=True)
    grid.add_column()
    for key, value in info.items():  # the version's declared fields, then the run's metrics and params
        grid.add_row(LABELS.get(key, key), cell(key, value) if key in LABELS else _shown(value))
    app.out.print(grid, highlight=False)


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_number(v)}" for k, v in sorted(value.items())) or "-"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    return "-" if value is None else _number(value)


def _number(value: Any) -> str:
    return (
        f"{value:,.4g}"
        if isinstance(value, float) and abs(value) < 1000
        else (f"{value:,.0f}" if isinstance(value, float) else str(value))
    )


@group.command("compare")
def compare(
    ctx: typer.Context,
    first: Annotated[str, typer.Argument(help="A version number or alias (champion).")],
    second: Annotated[str, typer.Argument(help="Another version number or alias.")],
    as_json: JsonOption = False,
) -> None:
    """Two versions side by side: every metric on today's test set, and at training."""
    from rich import box
    from rich.table import Table

    from mlops_cli.pipeline.scores import metrics_today
    from mlops_cli.registry.models import show_version

    app = application(ctx)
    settings = app.settings()
    a, b = show_version(settings, first), show_version(settings, second)
    today, rows = metrics_today(settings, [a["version"], b["version"]])
    shadow = _shadow_evidence(settings, a["version"], b["version"])
    if as_json:
        versions = [{**v, "today": today[v["version"]]} for v in (a, b)]
        app.print_json({"test_rows": rows, "versions": versions, "shadow": shadow})
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=f"on today's {rows:,} test rows", title_justify="left")
    table.add_column("metric")
    for v in (a, b):
        table.add_column(
            f"v{v['version']}" + (f" ({', '.join(v['aliases'])})" if v["aliases"] else ""), justify="right"
        )
    table.add_column("better", justify="left")
    for metric, lower_is_better in (("rmse", True), ("mae", True), ("mape", True), ("r2", False)):
        x, y = today[a["version"]][metric], today[b["version"]][metric]
        best = "=" if x == y else f"v{a['version'] if (x < y) == lower_is_better else b['version']}"
        table.add_row(metric.upper().replace("R2", "R²"), _metric(metric, x), _metric(metric, y), best)
    table.add_row("RMSE@train", money(a["rmse"]), money(b["rmse"]), "(own test rows)")
    table.add_row("model", a["model_type"] or "-", b["model_type"] or "-", "")
    table.add_row("batches", batch_range(a["batches"]), batch_range(b["batches"]), "")
    app.out.print(table)
    if shadow is None:
        app.out.print("no shadow evidence: MLOPS_API_SHADOW_SHARE > 0 prices live requests with both", highlight=False)
        return
    app.out.print(
        f"on live traffic, v{shadow['shadow']} in shadow of v{shadow['served']}: {shadow['requests']:,} request(s), "
        f"{shadow['listings']:,} listing(s); apart by {money(shadow['mean_abs_disagreement'])} on average "
        f"(median {money(shadow['median_abs_disagreement'])}), {shadow['share_over_10pct']:.1%} more than 10 % apart; "
        f"v{shadow['served']} answered in {shadow['served_request_ms_p50']:.1f} ms (p50 request), "
        f"v{shadow['shadow']} priced in {shadow['shadow_pricing_ms_p50']:.2f} ms (p50)",
        highlight=False,
    )


def _shadow_evidence(settings: Any, first: int, second: int) -> dict[str, Any] | None:
    """The two versions side by side on live requests, from the inference events (None when the
    data DB has none, or cannot be read: the comparison on the test set stands alone)."""
    from mlops_cli.errors import MlopsError
    from mlops_cli.pipeline.shadow import shadow_evidence
    from mlops_cli.store.db import engine_for

    try:
        return shadow_evidence(engine_for(settings), first, second)
    except MlopsError:
        return None


def _metric(name: str, value: float) -> str:
    if name in ("rmse", "mae"):
        return money(value)
    return f"{value:.1%}" if name == "mape" else f"{value:.3f}"
