"""`mlops events list|export`: what the inference API was asked and answered (the raw domain's
``inference_events``, one row per listing)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from mlops_cli.cli.application import application, money
from mlops_cli.cli.options import JsonOption
from mlops_cli.schema import REQUEST_ID

group = typer.Typer(help="Inference events: every request the API answered or refused.", no_args_is_help=True)

DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _since(value: str | None) -> datetime | None:
    """ "15m", "2h", "7d" ago, or an ISO date/time (UTC unless it says otherwise)."""
    if value is None:
        return None
    text = value.strip()
    if match := DURATION.fullmatch(text):
        return datetime.now(UTC) - timedelta(**{UNITS[match[2]]: float(match[1])})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("expected a duration (30s, 15m, 2h, 7d) or an ISO time (2026-12-05T08:00)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _status(value: str | None) -> str | None:
    if value is None or value in ("ok", "error") or re.fullmatch(r"[1-5]\d\d", value):
        return value
    raise typer.BadParameter("expected ok, error or an HTTP status code such as 422")


def _request_id(value: str | None) -> str | None:
    if value is None or re.fullmatch(REQUEST_ID, value):
        return value
    raise typer.BadParameter("expected an X-Request-ID as the API gives it: up to 64 letters, digits or . : / + = - _")


SinceOption = Annotated[
    str | None, typer.Option(help="Only events since then: 30s, 15m, 2h, 7d, or an ISO time (UTC).", callback=_since)
]
StatusOption = Annotated[
    str | None, typer.Option(help="ok (answered), error (refused) or a status code (422).", callback=_status)
]
VersionOption = Annotated[int | None, typer.Option(help="Only events answered by this model version.", min=1)]
RequestIdOption = Annotated[
    str | None,
    typer.Option(help="Only this request's events (the X-Request-ID its answer carried).", callback=_request_id),
]


def _filters(since: Any, status: str | None, version: int | None, request_id: str | None) -> dict[str, Any]:
    return {"since": since, "status": status, "version": version, "request_id": request_id}


@group.command("list")
def list_events(
    ctx: typer.Context,
    since: SinceOption = None,
    status: StatusOption = None,
    version: VersionOption = None,
    request_id: RequestIdOption = None,
    limit: Annotated[int, typer.Option(help="Show the newest N events.", min=1, max=100_000)] = 20,
    as_json: JsonOption = False,
) -> None:
    """The newest inference events: when, request id, status, model version, latency, price or error."""
    from mlops_cli.store.db import engine_for
    from mlops_cli.store.events import read_events

    app = application(ctx)
    events = read_events(engine_for(app.settings()), limit=limit, **_filters(since, status, version, request_id))
    if as_json:
        app.print_json([_plain(e) for e in events])
        return
    if not events:
        app.out.print(
            "no inference events match: the API records every /predict request (MLOPS_API_EVENTS)", highlight=False
        )
        return
    app.out.print(_table(events))
    app.out.print("`--json` gives every field, the listing as received included.", highlight=False)


def _plain(event: dict[str, Any]) -> dict[str, Any]:
    """An event as JSON: the time in ISO form, the unseen fields as a list (the listing stays the
    text received: a refused body need not be JSON)."""
    import json

    unseen = event["unseen"]
    return {
        **event,
        "received_at": event["received_at"].isoformat(),
        "unseen": None if unseen is None else json.loads(unseen),
    }


def _table(events: list[dict[str, Any]]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name, justify in (
        ("time (UTC)", "left"),
        ("request", "left"),
        ("status", "right"),
        ("model", "left"),
        ("ms", "right"),
        ("#", "right"),
        ("answer", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name != "answer", overflow="ellipsis")
    for e in events:
        answer = money(e["prediction"]) if e["prediction"] is not None else (e["error_kind"] or "")
        if e["unseen"] not in (None, "[]"):
            answer += f" unseen {e['unseen']}"
        table.add_row(
            e["received_at"].strftime("%m-%d %H:%M:%S"),
            e["request_id"][-14:],
            str(e["status"]),
            f"v{e['model_version']} {e['model_path']}" if e["model_version"] is not None else "-",
            f"{e['latency_ms']:.1f}" if e["latency_ms"] is not None else "-",
            str(e["item"]) if e["item"] is not None else "-",
            answer,
        )
    return table


@group.command("drift")
def drift(
    ctx: typer.Context,
    since: SinceOption = "15m",
    model: Annotated[
        str | None, typer.Option("--model", help="The version (3) or alias that answered; default the champion.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Served traffic against training: the listings a version answered since then, compared with
    its training rows (PSI per number and of the predictions against training prices, distance of
    the state mix), and the share with values the model never saw."""
    from mlops_cli.pipeline.monitor import served_drift_of

    app = application(ctx)
    settings = app.settings()
    report = served_drift_of(settings, model, since)
    if as_json:
        app.print_json(report.to_dict())
        return
    app.out.print(f"v{report.version}: {report.listings:,} answered listing(s) since {report.since}", highlight=False)
    for feature, value in report.drift.items():
        mark = "  drifted" if value >= settings.drift_threshold else ""
        app.out.print(f"  {feature:<12} {value:8.3f}{mark}", highlight=False)
    if report.drift:
        app.out.print(f"  (drifted: at or above MLOPS_DRIFT_THRESHOLD {settings.drift_threshold:g})", highlight=False)
    if report.unseen_share:
        shares = ", ".join(f"{k} {v:.1%}" for k, v in report.unseen_share.items())
        app.out.print(f"never seen in training: {shares}", highlight=False)
    if report.predictions:
        app.out.print(
            "predicted prices: "
            + ", ".join(f"p{float(q) * 100:.0f} {money(v)}" for q, v in report.predictions.items()),
            highlight=False,
        )
    if report.note:
        app.out.print(report.note, highlight=False)


class ExportFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"


@group.command("export")
def export(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The file to write.", dir_okay=False)],
    fmt: Annotated[
        ExportFormat | None, typer.Option("--format", help="csv or parquet (default: from PATH's suffix, else csv).")
    ] = None,
    since: SinceOption = None,
    status: StatusOption = None,
    version: VersionOption = None,
    request_id: RequestIdOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite PATH if it exists.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Every matching event, oldest first, as CSV or Parquet: one row per listing, every field."""
    from mlops_cli.errors import MlopsError
    from mlops_cli.store.db import engine_for
    from mlops_cli.store.events import export_events

    app = application(ctx)
    chosen = fmt.value if fmt else ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv")
    if path.exists() and not force:
        raise MlopsError(f"{path} exists", hint="choose another path, or --force to overwrite it")
    if not path.parent.is_dir():
        raise MlopsError(f"no folder {path.parent} to write {path.name} in", hint="create it first")
    written = export_events(engine_for(app.settings()), path, chosen, **_filters(since, status, version, request_id))
    if as_json:
        app.print_json({"path": str(path), "format": chosen, "events": written})
        return
    app.out.print(f"{written:,} event(s) written to {path} ({chosen})", highlight=False)
