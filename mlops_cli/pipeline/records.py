"""The batch record: one batch number over the rounds (answers) of it, declared once.

Every reader derives its view from these fields instead of keeping its own list: the JSON
summary of `mlops train --json` and the DAG (the fields marked ``summary``), the UI's batch
table (``shown`` fields in declaration order, with their label and how each value reads),
and the reports. A new field is added here, and only here, to reach all of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, Literal


# What a round's steps decided, as stored in its audit record (plain strings in the JSON: a
# StrEnum is its value, and a record read back compares equal to its member).
class Cause(StrEnum):
    """Why a round retrained or not (``decision.cause``)."""

    TRIGGERED = "triggered"  # at least one trigger fired, with rows enough to train
    NO_TRIGGER = "no_trigger"
    TOO_FEW_ROWS = "too_few_rows"
    NO_ROWS = "no_rows"  # the answer left no clean row


class TrainingOutcome(StrEnum):
    """What the train step did (``training.outcome``)."""

    TRAINED = "trained"
    ADOPTED = "adopted"  # registered by an attempt that crashed after registering
    REUSED = "reused"  # a version fitted on exactly these rows already exists
    UNCHANGED = "unchanged"  # those rows are the champion's own: nothing registered


class PromotionOutcome(StrEnum):
    """What the comparison decided (``promotion.outcome``)."""

    FIRST = "first"  # no champion yet
    PROMOTED = "promoted"
    FORCED = "forced"  # `mlops promote N --force`
    REJECTED = "rejected"
    ALREADY = "already"  # the version is the champion


# How a value reads in a table: a number of rows, a share, a score, a version, a flag, text.
# "record": a structured part of the audit record (JSON), rendered by the functions below.
Kind = Literal["number", "count", "share", "score", "money", "version", "flag", "text", "reasons", "list", "record"]


def _field(label: str, kind: Kind, *, summary: bool = False, shown: bool = True, **default: Any) -> Any:
    return field(metadata={"label": label, "kind": kind, "summary": summary, "shown": shown}, **default)


@dataclass(kw_only=True)
class BatchRecord:
    """One batch number, over the rounds (answers) of it that were processed."""

    batch: int = _field("Batch", "number", summary=True)
    state: str = _field("State", "text", summary=True)
    answers: int = _field("Answers", "count", summary=True)
    rows_received: int = _field("Rows in", "count", summary=True)
    rows_kept: int = _field("Kept", "count", summary=True)
    rows_dropped: int = _field("Dropped", "count")
    retrained: bool = _field("Retrained", "flag", summary=True)
    new_share: float | None = _field("New rows", "share", default=None)
    drift_score: float | None = _field("Drift", "score", default=None)
    version: int | None = _field("Version", "version", summary=True)
    champion_version: int | None = _field("Champion", "version", summary=True)
    # the whole reasoning, rendered from the typed parts below (the tables show a short why)
    reason: str = _field("Why, in full", "text", summary=True, shown=False)
    rmse: float | None = _field("RMSE", "money", summary=True, shown=False)
    dropped: dict[str, int] = _field("Dropped, by reason", "reasons", shown=False)
    promoted: bool = _field("Promoted", "flag", shown=False, default=False)
    # the audit record of the round that decided (see store/tables.py's batch_log)
    cause: str | None = _field("Decision", "text", summary=True, shown=False, default=None)
    triggers: list[str] = _field("Triggers fired", "list", summary=True, shown=False, default_factory=list)
    outcome: str | None = _field("Outcome", "text", summary=True, shown=False, default=None)
    deltas: dict[str, float | None] | None = _field("Change vs champion", "record", shown=False, default=None)
    validation: dict[str, Any] | None = _field("Validation", "record", shown=False, default=None)
    champion_on_batch: dict[str, Any] | None = _field("Champion on this batch", "record", shown=False, default=None)
    decision: dict[str, Any] | None = _field("Retraining decision", "record", shown=False, default=None)
    training: dict[str, Any] | None = _field("Training", "record", shown=False, default=None)
    promotion: dict[str, Any] | None = _field("Promotion", "record", shown=False, default=None)
    mlflow: dict[str, Any] | None = _field("MLflow", "record", shown=False, default=None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """The fields a script reads (`mlops train --json`, the DAG's result)."""
        return {name: getattr(self, name) for name in SUMMARY_FIELDS}


def _names(flag: str) -> tuple[str, ...]:
    return tuple(f.name for f in fields(BatchRecord) if f.metadata[flag])


SUMMARY_FIELDS = _names("summary")
SHOWN_FIELDS = _names("shown")  # the UI's table, in this order
LABELS = {f.name: f.metadata["label"] for f in fields(BatchRecord)}
KINDS: dict[str, Kind] = {f.name: f.metadata["kind"] for f in fields(BatchRecord)}


def of_kind(*kinds: Kind) -> list[str]:
    """The fields whose values read as one of ``kinds`` (e.g. the counts, to format them)."""
    return [name for name, kind in KINDS.items() if kind in kinds]


# --- sentences, rendered from the typed record (nothing parses them back) -------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def trigger_text(t: dict[str, Any]) -> str:
    """One trigger as people read it: "new rows 67% >= 60%", "drift 0.060 < 0.2"."""
    name, value, threshold, fired = t["name"], t.get("value"), t.get("threshold"), t["fired"]
    sign = ">=" if fired else "<"
    if name == "first_model":
        return "no champion yet" if fired else "a champion exists"
    if name == "new_rows":
        return f"new rows {_pct(value)} {sign} {_pct(threshold)}"
    if name == "drift":
        worst = f" ({t['detail']})" if fired and t.get("detail") else ""
        return f"drift {value:.3f}{worst} {sign} {threshold:g}" if value is not None else "no drift measured"
    if name == "new_categories":
        return f"unseen categories in {_pct(value)} of rows {sign} {_pct(threshold)}"
    if name == "degradation":
        return f"champion MAE {value:+.0%} on these rows {sign} {_pct(threshold)}" if value is not None else ""
    if name == "schema":
        return f"schema changed: {t.get('detail')}" if fired else "schema as before"
    return f"{name} {value} {sign} {threshold}"


def decision_text(decision: dict[str, Any] | None) -> str:
    """Why a round trained or not, in a sentence (from the stored decision)."""
    if not decision:
        return ""
    triggers = decision.get("triggers") or []
    cause = decision.get("cause")
    if cause == Cause.NO_ROWS:
        return "no clean rows in this answer"
    fired = [trigger_text(t) for t in triggers if t["fired"]]
    if cause == Cause.TOO_FEW_ROWS:
        rows, least = decision.get("train_rows"), decision.get("min_train_rows")
        return f"{', '.join(fired)}, but too few rows to train ({rows} < {least})"
    if cause == Cause.TRIGGERED:
        return ", ".join(fired)
    quiet = [trigger_text(t) for t in triggers if t["name"] in ("new_rows", "drift") and t.get("value") is not None]
    return ", ".join(quiet) or "no trigger fired"


def outcome_text(training: dict[str, Any] | None, promotion: dict[str, Any] | None) -> str:
    """What came of a training: reused, nothing registered, first champion, promoted, kept."""
    if training and training.get("outcome") == TrainingOutcome.UNCHANGED:
        return f"same training rows as champion v{training.get('version')}: nothing registered"
    said = []
    if training and training.get("outcome") == TrainingOutcome.REUSED:
        said.append(f"v{training.get('version')} was fitted on the same rows: reused")
    if promotion:
        outcome, why = promotion.get("outcome"), promotion.get("why")
        said.append(
            {
                PromotionOutcome.FIRST: "first champion",
                PromotionOutcome.PROMOTED: f"promoted ({why})",
                PromotionOutcome.FORCED: f"promoted ({why})",
                PromotionOutcome.ALREADY: f"kept champion ({why})",
                PromotionOutcome.REJECTED: f"kept champion ({why})",
            }.get(outcome, str(outcome))
        )
    return "; ".join(said)


def full_reason(
    decision: dict[str, Any] | None, training: dict[str, Any] | None, promotion: dict[str, Any] | None
) -> str:
    return "; ".join(part for part in (decision_text(decision), outcome_text(training, promotion)) if part)


_SHORT_TRIGGER = {
    "first_model": lambda t: "first model",
    "new_rows": lambda t: f"{_pct(t.get('value'))} new",
    "drift": lambda t: f"drift {t['value']:.2f}",
    "new_categories": lambda t: f"{_pct(t.get('value'))} unseen",
    "degradation": lambda t: f"MAE {t['value']:+.0%}",
    "schema": lambda t: "schema changed",
}


def short_reason(batch: BatchRecord) -> str:
    """The decision and its outcome in a few words: "67% new → promoted", "only 23% new"."""
    decision = batch.decision or {}
    triggers = decision.get("triggers") or []
    fired = [t for t in triggers if t["fired"]]
    if batch.state == "skipped":
        return "never served"
    if batch.state == "duplicate":
        return "repeated rows"
    if batch.state in ("rejected", "empty"):
        return batch.state
    if not decision:  # not decided yet, or by an mlops before decisions were recorded (schema 3)
        return "not recorded" if batch.state == "done" else batch.state
    if decision.get("cause") == Cause.NO_ROWS:
        said = "no clean rows"
    elif decision.get("cause") == Cause.TOO_FEW_ROWS:
        said = "too few rows"
    elif fired:
        said = ", ".join(_SHORT_TRIGGER[t["name"]](t) for t in fired[:2])
    else:
        said = f"only {_pct(batch.new_share)} new"
    outcome = {
        "first": "first champion",
        "promoted": "promoted",
        "forced": "forced",
        "rejected": "kept",
        "already": "kept",
        "reused": f"reused v{batch.version}",
        "unchanged": "unchanged",
    }.get(batch.outcome or "", "")
    return f"{said} → {outcome}" if outcome else said


# --- the record in lines (`mlops batches show`, the UI's batch details) ---------------------------


def money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _share(part: dict[str, Any]) -> str:
    return f"{part['count']:,} ({part['share']:.1%})"


def record_lines(b: BatchRecord) -> list[tuple[str, str]]:
    """The batch's record in lines: decision, triggers, champion on the batch, promotion, report."""
    from mlops_cli.rule import describe_changes

    decision = b.decision or {}
    lines = [
        ("batch", f"{b.batch} ({b.state}), {b.answers} answer{'s' if b.answers != 1 else ''}"),
        ("rows", f"{b.rows_received:,} received, {b.rows_kept:,} kept, {b.rows_dropped:,} dropped"),
        ("dropped", ", ".join(f"{reason} {count:,}" for reason, count in sorted(b.dropped.items())) or "-"),
        ("retrained", ("yes: " if b.retrained else "no: ") + (decision_text(decision) or b.reason or "-")),
    ]
    triggers = decision.get("triggers") or []
    if triggers:
        lines.append(
            (
                "triggers",
                "; ".join(
                    ("✓ " if t["fired"] else "· ") + trigger_text(t)
                    for t in triggers
                    if t.get("value") is not None or t["fired"]
                ),
            )
        )
    on = b.champion_on_batch
    if on and "error" in on:
        lines.append(("champion", f"v{on['version']} could not price this batch: {on['error']}"))
    elif on:
        change = (
            "" if on.get("mae_change") is None else f", {on['mae_change']:+.0%} vs its test MAE {money(on['test_mae'])}"
        )
        lines.append(
            (
                "champion",
                f"v{on['version']} on these {on['rows']:,} rows: MAE {money(on['mae'])}, "
                f"RMSE {money(on['rmse'])}{change}",
            )
        )
    if b.promotion:
        p = b.promotion
        changes = describe_changes(p.get("deltas") or {})
        lines.append(("rule", f"{p.get('rule')} (deciding: {p.get('deciding') or '-'})"))
        lines.append(("outcome", outcome_text(b.training, p) + (f"; {changes}" if changes else "")))
    elif b.training:
        lines.append(("outcome", outcome_text(b.training, None)))
    if b.mlflow:
        lines.append(("mlflow", f"version {b.mlflow['version'] or '-'}, run {b.mlflow['run_id'] or '-'}"))
    lines.append(("after", f"champion v{b.champion_version}" if b.champion_version else "no champion"))
    return lines + validation_lines(b.validation or {})


def validation_lines(v: dict[str, Any]) -> list[tuple[str, str]]:
    lines = []
    schema = v.get("schema")
    if schema:
        said = [f"{len(schema['received'])} columns"]
        for key, label in (
            ("extra", "extra"),
            ("missing_optional", "missing optional"),
            ("missing_required", "missing required"),
            ("numbers_as_text", "numbers as text"),
        ):
            if schema.get(key):
                said.append(f"{label}: {', '.join(schema[key])}")
        versus = schema.get("versus_first") or {}
        if versus.get("new") or versus.get("missing"):
            said.append(f"vs first answer: new {versus.get('new') or '-'}, missing {versus.get('missing') or '-'}")
        lines.append(("schema", "; ".join(said)))
    quality = v.get("quality")
    if quality:
        nulls = [f"{col} {_share(n)}" for col, n in quality["nulls"].items() if n["count"]]
        ranges = [f"{rule} {_share(n)}" for rule, n in quality["out_of_range"].items() if n["count"]]
        dup = quality["duplicates"]
        lines.append(("nulls", ", ".join(nulls) or "none"))
        lines.append(
            ("duplicates", f"{_share(dup['in_answer'])} in the answer, {_share(dup['of_stored'])} of stored rows")
        )
        lines.append(("out of range", ", ".join(ranges) or "none"))
        target = quality["target"]
        lines.append(
            (
                "price",
                f"missing {_share(target['missing'])}, not positive {_share(target['non_positive'])}, "
                f"extreme {_share(quality['extreme_price'])}",
            )
        )
    volume = v.get("volume")
    if volume:
        lines.append(
            (
                "volume",
                f"{volume['received'] or 0:,} received, {volume['new'] or 0:,} new, {volume['kept'] or 0:,} kept "
                f"({volume['share_of_data']:.1%} of the data)",
            )
        )
    drift = v.get("drift")
    if drift:
        lines.append(
            (
                "drift",
                ", ".join(f"{col} {d['value']:.3f}{'!' if d['drifted'] else ''}" for col, d in drift.items())
                + f" (PSI; state: TVD; ! at {next(iter(drift.values()))['threshold']:g})",
            )
        )
    unseen = v.get("new_categories")
    if unseen:
        parts = [
            f"{col} {c['distinct']} ({c['rows']:,} rows: {', '.join(list(c['values'])[:3])})"
            for col, c in unseen["columns"].items()
            if c["distinct"]
        ]
        lines.append(("unseen", (", ".join(parts) + f"; {unseen['share']:.1%} of rows") if parts else "none"))
    enough = v.get("sufficiency")
    if enough:
        verdict = ">=" if enough["sufficient"] else "<"
        lines.append(
            (
                "sufficiency",
                f"{enough['train_rows']:,} training rows {verdict} {enough['minimum']:,}, "
                f"{enough['test_rows']:,} test rows",
            )
        )
    return lines
