"""`mlops batches list|show`: the batch log as the engine wrote it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_cli.pipeline.engine import RunReport, all_batches
from mlops_cli.pipeline.records import BatchRecord
from mlops_cli.store.db import engine_for
from mlops_cli.store.rounds import rounds_of_batch

if TYPE_CHECKING:
    from mlops_cli.config import Settings


def summaries(settings: Settings) -> RunReport:
    """Every batch of the dataset, one summary each over all its rounds."""
    return all_batches(engine_for(settings))


def rounds(settings: Settings, batch: int) -> list[dict[str, Any]]:
    """Every round (answer) of batch ``batch`` as stored in the batch log, oldest first."""
    return rounds_of_batch(engine_for(settings), batch)


def short_reason(batch: BatchRecord) -> str:
    """The decision and its outcome in a few words: "67% new → promoted", "only 23% new"."""
    decision, *outcomes = batch.reason.split("; ")
    if decision.startswith("no champion"):
        said = "first model"
    elif decision.startswith("drift"):
        said = f"drift {batch.drift_score:.2f}" if batch.drift_score is not None else "drift"
    elif decision.startswith("new rows") and batch.new_share is not None:
        said = f"{batch.new_share:.0%} new" if batch.retrained else f"only {batch.new_share:.0%} new"
    else:
        said = decision if len(decision) <= 24 else decision[:23] + "…"
    said_after = []
    for outcome in outcomes:
        words = outcome.split(" (")[0].replace("kept champion", "kept")
        if words.endswith("reused"):  # "v1 was fitted on the same rows: reused"
            words = f"reused {words.split()[0]}"
        said_after.append(words)
    return " → ".join([said, ", ".join(said_after)]) if said_after else said
