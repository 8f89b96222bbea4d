"""The batch record: one batch number over the rounds (answers) of it, declared once.

Every reader derives its view from these fields instead of keeping its own list: the JSON
summary of `mlops train --json` and the DAG (the fields marked ``summary``), the UI's batch
table (``shown`` fields in declaration order, with their label and how each value reads),
and the reports. A new field is added here, and only here, to reach all of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

# How a value reads in a table: a number of rows, a share, a score, a version, a flag, text.
Kind = Literal["number", "count", "share", "score", "money", "version", "flag", "text", "reasons"]


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
    # the whole reasoning (the tables show a short why, rendered from it)
    reason: str = _field("Why, in full", "text", summary=True, shown=False)
    rmse: float | None = _field("RMSE", "money", summary=True, shown=False)
    dropped: dict[str, int] = _field("Dropped, by reason", "reasons", shown=False)
    promoted: bool = _field("Promoted", "flag", shown=False, default=False)

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
