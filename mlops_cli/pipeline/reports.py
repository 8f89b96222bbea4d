"""What a run of the loop reports: one :class:`~mlops_cli.pipeline.records.BatchRecord` per batch
number, built from its rounds as the data DB holds them (`mlops train`, `mlops batches`, the UI,
the DAG's ``log_result`` and the Airflow runner all read these)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_cli.pipeline.records import BatchRecord
from mlops_cli.store.rounds import round_ids, rounds_of

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


# --- reports --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class RunReport:
    batches: list[BatchRecord]
    skipped_batches: list[int] = field(default_factory=list)
    # why the run ended: exhausted | repeating (--no-wait) | waited (MLOPS_DATA_MAX_WAIT) | batch (--batch N)
    end: str = "exhausted"
    message: str | None = None
    warnings: list[str] = field(default_factory=list)
    source: str | None = None  # what the run read (MLOPS_DATA_SOURCE's form)
    followed: bool = False  # no source named: the dataset's own was taken

    def to_dict(self) -> dict[str, Any]:
        return {
            "batches": [b.summary() for b in self.batches],
            "skipped_batches": self.skipped_batches,
            "end": self.end,
            "message": self.message,
            "warnings": self.warnings,
            "source": self.source,
            "followed_dataset_source": self.followed,
        }


def batch_record(rounds: list[dict[str, Any]]) -> BatchRecord:
    """One batch number's record over its rounds: counts summed, the audit record of the last
    round that decided (sentences rendered from it), the latest version trained."""
    from mlops_cli.pipeline.records import full_reason

    decided = [r for r in rounds if r["decision"]]
    last = (decided or rounds)[-1]
    trained = [r for r in rounds if r["version"] is not None]
    dropped: dict[str, int] = {}
    for r in rounds:
        for reason, count in (r["dropped"] or {}).items():
            dropped[reason] = dropped.get(reason, 0) + count
    states = [r["state"] for r in rounds]
    reason = full_reason(last["decision"], last["training"], last["promotion"]) or last["error"] or ""
    if not reason and states[-1] == "duplicate":
        reason = "the answer repeated rows already stored"
    if not reason and states[-1] == "skipped":
        reason = "the source never served this batch number"
    training, promotion = last["training"] or {}, last["promotion"] or {}
    return BatchRecord(
        batch=rounds[0]["batch"],
        state="done" if "done" in states else states[-1],
        answers=len(rounds),
        rows_received=sum(r["rows_new"] or 0 for r in rounds),
        rows_kept=sum(r["rows_kept"] or 0 for r in rounds),
        rows_dropped=sum(r["rows_dropped"] or 0 for r in rounds),
        dropped=dropped,
        retrained=any(r["retrained"] for r in rounds),
        reason=reason,
        rmse=trained[-1]["rmse"] if trained else None,
        version=trained[-1]["version"] if trained else None,
        champion_version=next((r["champion_version"] for r in reversed(rounds) if r["champion_version"]), None),
        promoted=any(r["promoted"] for r in rounds),
        drift_score=last["drift_score"],
        new_share=last["new_share"],
        cause=(last["decision"] or {}).get("cause"),
        triggers=(last["decision"] or {}).get("fired", []),
        outcome=training.get("outcome")
        if training.get("outcome") in ("reused", "unchanged") and not promotion
        else promotion.get("outcome"),
        deltas=promotion.get("deltas"),
        validation=last["validation"],
        champion_on_batch=last["champion_on_batch"],
        decision=last["decision"],
        training=last["training"],
        promotion=last["promotion"],
        mlflow={"run_id": last["run_id"], "version": last["version"]} if last["run_id"] or last["version"] else None,
    )


def report_rounds(engine: Engine, ids: list[int], **extra: Any) -> RunReport:
    """Rounds processed by a run → one report per batch number (skipped numbers listed apart)."""
    if not ids:
        return RunReport(batches=[], **extra)
    rounds = rounds_of(engine, ids)
    by_batch: dict[int, list[dict[str, Any]]] = {}
    skipped: list[int] = []
    for r in rounds:
        if r["state"] == "skipped":
            skipped.append(r["batch"])
        else:
            by_batch.setdefault(r["batch"], []).append(r)
    return RunReport(batches=[batch_record(v) for v in by_batch.values()], skipped_batches=skipped, **extra)


def all_batches(engine: Engine) -> RunReport:
    """Every batch of the dataset, summarised over all its rounds (the UI's and `batches` view)."""
    return report_rounds(engine, round_ids(engine), end="", message=None)
