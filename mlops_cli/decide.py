"""Step 3: decide whether to retrain, from the share of new rows and a drift score."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mlops_cli.storage import batch_log, clean_data, engine_for, read_table, upsert_batch_log

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from mlops_cli.settings import Settings

PSI_BINS = 10


@dataclass
class Decision:
    batch: int
    retrain: bool
    reason: str
    new_rows: int
    total_rows: int
    new_share: float
    drift_score: float | None = None
    drift: dict[str, float] = field(default_factory=dict)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of ``current`` against ``reference`` (decile bins)."""
    reference = reference[~np.isnan(reference)]
    current = current[~np.isnan(current)]
    if len(reference) < bins or len(current) == 0:
        return 0.0
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.histogram(reference, edges)[0] / len(reference)
    actual = np.histogram(current, edges)[0] / len(current)
    expected, actual = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def share_distance(reference: pd.Series, current: pd.Series) -> float:
    """Total variation distance between two category mixes (0 same, 1 disjoint)."""
    ref = reference.fillna("unknown").value_counts(normalize=True)
    cur = current.fillna("unknown").value_counts(normalize=True)
    both = ref.index.union(cur.index)
    return float(0.5 * np.abs(ref.reindex(both, fill_value=0) - cur.reindex(both, fill_value=0)).sum())


def drift_scores(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    """Per-feature drift: PSI for price and size, mix distance for state."""
    return {
        "price_psi": round(psi(reference["price"].to_numpy(float), current["price"].to_numpy(float)), 4),
        "house_size_psi": round(psi(reference["house_size"].to_numpy(float), current["house_size"].to_numpy(float)), 4),
        "state_mix": round(share_distance(reference["state"], current["state"]), 4),
    }


def _last_trained_batch(engine: Engine, before: int) -> int | None:
    from sqlalchemy import func, select

    with engine.connect() as conn:
        return conn.execute(
            select(func.max(batch_log.c.batch)).where(batch_log.c.retrained.is_(True), batch_log.c.batch < before)
        ).scalar()


def decide_retrain(
    settings: Settings, batch: int, engine: Engine | None = None, champion_batches: list[int] | None = None
) -> Decision:
    """Decide for batch ``batch`` and record the decision with its numbers in ``batch_log``.

    ``champion_batches``: the batches the champion was trained on (its drift reference);
    None when there is no champion yet, which always means "train".
    """
    engine = engine or engine_for(settings)
    rows = read_table(engine, clean_data, clean_data.c.batch <= batch)
    last = _last_trained_batch(engine, batch)
    new = rows if last is None else rows[rows["batch"] > last]
    current = rows[rows["batch"] == batch]
    total = len(rows)
    share = len(new) / total if total else 0.0
    drift: dict[str, float] = {}
    if champion_batches is not None and len(current):
        reference = rows[(rows["batch"].isin(champion_batches)) & (rows["split"] == "train")]
        if reference.empty:  # the champion came from an earlier dataset: compare with what came before
            reference = rows[rows["batch"] < batch]
        if len(reference):
            drift = drift_scores(reference, current)
    score = max(drift.values()) if drift else None
    threshold = settings.retrain_min_new_share
    if len(current) == 0:
        retrain, reason = False, "no clean rows in this batch"
    elif champion_batches is None:
        retrain, reason = True, "no champion yet"
    elif share >= threshold:
        retrain, reason = True, f"new rows {share:.0%} >= {threshold:.0%}"
    elif settings.drift_trigger and score is not None and score >= settings.drift_threshold:
        worst = max(drift, key=drift.get)
        retrain, reason = True, f"drift {score:.3f} ({worst}) >= {settings.drift_threshold:g}"
    else:
        drift_text = f", drift {score:.3f} < {settings.drift_threshold:g}" if score is not None else ""
        retrain, reason = False, f"new rows {share:.0%} < {threshold:.0%}{drift_text}"
    decision = Decision(batch, retrain, reason, len(new), total, round(share, 4), score, drift)
    upsert_batch_log(
        engine,
        batch,
        new_rows=len(new),
        total_rows=total,
        new_share=decision.new_share,
        drift_score=score,
        drift=drift,
        retrained=retrain,
        reason=reason,
    )
    return decision
