"""Step 3: decide whether to retrain, from the share of new rows and a drift score."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from mlops_cli.config import Settings

PSI_BINS = 10


@dataclass(kw_only=True)
class Decision:
    retrain: bool
    reason: str
    new_rows: int
    total_rows: int
    new_share: float
    drift_score: float | None = None
    drift: dict[str, float] = field(default_factory=dict)


# The columns drift is measured on, and what a reference keeps of them.
DRIFT_COLUMNS = ["price", "house_size", "state"]


def psi_bins(reference: np.ndarray, bins: int = PSI_BINS) -> dict[str, Any] | None:
    """What PSI needs of a reference: its decile edges and how many values fall in each (None
    when it has too few values to bin)."""
    reference = reference[~np.isnan(reference)]
    if len(reference) < bins:
        return None
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    return {"edges": edges.tolist(), "counts": np.histogram(reference, edges)[0].tolist(), "n": len(reference)}


def psi_against(binned: dict[str, Any] | None, current: np.ndarray) -> float:
    """Population stability index of ``current`` against a reference binned by :func:`psi_bins`."""
    current = current[~np.isnan(current)]
    if binned is None or len(current) == 0:
        return 0.0
    edges = np.asarray(binned["edges"], dtype=float)
    expected = np.asarray(binned["counts"], dtype=float) / binned["n"]
    actual = np.histogram(current, edges)[0] / len(current)
    expected, actual = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of ``current`` against ``reference`` (decile bins)."""
    return psi_against(psi_bins(reference, bins), current)


def category_counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.fillna("unknown").value_counts().items()}


def share_distance(reference: dict[str, int], current: pd.Series) -> float:
    """Total variation distance between two category mixes (0 same, 1 disjoint)."""
    import pandas as pd

    counts = pd.Series(reference, dtype="int64")
    ref = counts / counts.sum()
    cur = current.fillna("unknown").value_counts(normalize=True)
    both = ref.index.union(cur.index)
    return float(0.5 * np.abs(ref.reindex(both, fill_value=0) - cur.reindex(both, fill_value=0)).sum())


@dataclass(kw_only=True)
class DriftReference:
    """The champion's training rows as drift needs them: price and size deciles, the state mix.

    A few hundred bytes whatever the number of rows, so a round is compared with the champion's
    data without reading that data again; computed once, when the rows are in hand (training).
    """

    rows: int
    price: dict[str, Any] | None
    house_size: dict[str, Any] | None
    state: dict[str, int]

    @classmethod
    def of(cls, frame: pd.DataFrame) -> DriftReference:
        return cls(
            rows=len(frame),
            price=psi_bins(frame["price"].to_numpy(float)),
            house_size=psi_bins(frame["house_size"].to_numpy(float)),
            state=category_counts(frame["state"]),
        )

    def to_json(self) -> str:
        import json

        return json.dumps(asdict(self))  # the infinite outer edges are written as Infinity

    @classmethod
    def from_json(cls, text: str) -> DriftReference:
        import json

        return cls(**json.loads(text))


def drift_scores(reference: DriftReference, current: pd.DataFrame) -> dict[str, float]:
    """Per-feature drift: PSI for price and size, mix distance for state."""
    return {
        "price_psi": round(psi_against(reference.price, current["price"].to_numpy(float)), 4),
        "house_size_psi": round(psi_against(reference.house_size, current["house_size"].to_numpy(float)), 4),
        "state_mix": round(share_distance(reference.state, current["state"]), 4),
    }


def decide_retrain(
    settings: Settings,
    *,
    current: pd.DataFrame,
    reference: DriftReference | None,
    new_rows: int,
    total_rows: int,
) -> Decision:
    """Retrain or not, and why, for the clean rows ``current`` of one round.

    ``new_rows``: clean rows since the last retrain, this round's included; ``total_rows``: every
    clean row so far. ``reference``: the champion's training rows (its drift reference), None
    when there is no champion yet, which always means "train".
    """
    share = new_rows / total_rows if total_rows else 0.0
    drift: dict[str, float] = {}
    if reference is not None and len(current) and reference.rows:
        drift = drift_scores(reference, current)
    score = max(drift.values()) if drift else None
    threshold = settings.retrain_min_new_share
    if len(current) == 0:
        retrain, reason = False, "no clean rows in this answer"
    elif reference is None:
        retrain, reason = True, "no champion yet"
    elif share >= threshold:
        retrain, reason = True, f"new rows {share:.0%} >= {threshold:.0%}"
    elif settings.drift_trigger and score is not None and score >= settings.drift_threshold:
        worst = max(drift, key=drift.get)
        retrain, reason = True, f"drift {score:.3f} ({worst}) >= {settings.drift_threshold:g}"
    else:
        drift_text = f", drift {score:.3f} < {settings.drift_threshold:g}" if score is not None else ""
        retrain, reason = False, f"new rows {share:.0%} < {threshold:.0%}{drift_text}"
    return Decision(
        retrain=retrain,
        reason=reason,
        new_rows=new_rows,
        total_rows=total_rows,
        new_share=round(share, 4),
        drift_score=score,
        drift=drift,
    )
