"""Step 3: decide whether to retrain, from explicit rules: the first model, the share of new rows,
drift per feature, new categories, the champion's degradation on the new rows, a schema change."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_cli.pipeline.records import Cause

if TYPE_CHECKING:
    import pandas as pd

    from mlops_cli.config import Settings

PSI_BINS = 10


# The columns drift is measured on: PSI for the numbers, the mix for the state (city and zip
# have thousands of values: the new-categories check covers them).
DRIFT_NUMBERS = ["price", "house_size", "bed", "bath", "acre_lot"]
DRIFT_CATEGORIES = ["state"]
DRIFT_COLUMNS = DRIFT_NUMBERS + DRIFT_CATEGORIES


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
    """The champion's training rows as drift needs them: each number's deciles, the state mix.

    A few hundred bytes whatever the number of rows, so a round is compared with the champion's
    data without reading that data again; computed once, when the rows are in hand (training).
    """

    rows: int
    numbers: dict[str, dict[str, Any] | None]  # PSI bins of each of DRIFT_NUMBERS
    categories: dict[str, dict[str, int]]  # the mix of each of DRIFT_CATEGORIES

    @classmethod
    def of(cls, frame: pd.DataFrame) -> DriftReference:
        return cls(
            rows=len(frame),
            numbers={col: psi_bins(frame[col].to_numpy(float)) for col in DRIFT_NUMBERS},
            categories={col: category_counts(frame[col]) for col in DRIFT_CATEGORIES},
        )

    def to_json(self) -> str:
        import json

        return json.dumps(asdict(self))  # the infinite outer edges are written as Infinity

    @classmethod
    def from_json(cls, text: str) -> DriftReference | None:
        """None for a summary an older mlops wrote (price, size and state only): recomputed."""
        import json

        data = json.loads(text)
        return cls(**data) if "numbers" in data else None


def drift_scores(reference: DriftReference, current: pd.DataFrame) -> dict[str, float]:
    """Per-feature drift: PSI for the numbers, total-variation distance for the state mix."""
    scores = {
        col: round(psi_against(reference.numbers.get(col), current[col].to_numpy(float)), 4) for col in DRIFT_NUMBERS
    }
    for col in DRIFT_CATEGORIES:
        scores[col] = round(share_distance(reference.categories.get(col, {}), current[col]), 4)
    return scores


def drift_report(settings: Settings, drift: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The drift part of a validation report: each feature's statistic, value and verdict."""
    return {
        col: {
            "statistic": "psi" if col in DRIFT_NUMBERS else "tvd",
            "value": value,
            "threshold": settings.drift_threshold,
            "drifted": value >= settings.drift_threshold,
        }
        for col, value in drift.items()
    }


def unseen_categories(known: dict[str, list[str]], current: pd.DataFrame, shown: int = 20) -> dict[str, Any]:
    """Per categorical column, the values of ``current`` the model's encoders never saw (``known``,
    from training), with their row counts and shares; and the rows with any unseen value. The
    encoders price them as their pooled unknown category: nothing fails on them."""
    from mlops_cli.schema import CATEGORICAL_FEATURES

    rows = len(current)
    any_unseen = np.zeros(rows, dtype=bool)
    columns: dict[str, Any] = {}
    for col in CATEGORICAL_FEATURES:
        if col not in known:
            continue
        values = current[col]
        unseen = (values.notna() & ~values.isin(set(known[col]))).to_numpy(dtype=bool)
        any_unseen |= unseen
        counts = values[unseen].value_counts()
        columns[col] = {
            "distinct": len(counts),
            "rows": int(unseen.sum()),
            "share": round(float(unseen.sum()) / rows, 4) if rows else 0.0,
            "values": {str(v): int(n) for v, n in counts.head(shown).items()},  # the most frequent
        }
    return {
        "columns": columns,
        "rows": int(any_unseen.sum()),
        "share": round(float(any_unseen.sum()) / rows, 4) if rows else 0.0,
        "handled": "priced as the encoders' pooled unknown category; learnt at the next training",
    }


# --- the retraining decision ----------------------------------------------------------------------


@dataclass(kw_only=True)
class Trigger:
    """One retraining rule, evaluated: its value against its threshold, and whether it fired."""

    name: str  # first_model | new_rows | drift | new_categories | degradation | schema
    fired: bool
    value: float | None = None
    threshold: float | None = None
    detail: str | None = None  # e.g. the feature that drifted most, "disabled"


@dataclass(kw_only=True)
class Decision:
    """Retrain or not: ``cause`` is :attr:`Cause.TRIGGERED` (see which ``triggers`` fired) or why
    not; never a sentence (sentences are rendered from this, see records.py)."""

    retrain: bool
    cause: Cause
    triggers: list[Trigger]
    new_rows: int
    total_rows: int
    new_share: float
    drift_score: float | None = None
    drift: dict[str, float] = field(default_factory=dict)
    train_rows: int | None = None  # clean training rows a model would be fitted on
    min_train_rows: int = 0

    @property
    def fired(self) -> list[str]:
        return [t.name for t in self.triggers if t.fired]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fired": self.fired}


def decide_retrain(
    settings: Settings,
    *,
    rows: int,
    has_champion: bool,
    drift: dict[str, float],
    new_rows: int,
    total_rows: int,
    train_rows: int | None = None,
    new_category_share: float | None = None,
    degradation: float | None = None,
    schema_changed: list[str] | None = None,
) -> Decision:
    """Retrain or not, and why, for one round of ``rows`` clean rows, from its validation report.

    ``new_rows``: clean rows since the last retrain, this round's included; ``total_rows``: every
    clean row so far (``train_rows`` of them for training). No champion (``has_champion``) always
    means "train". ``drift``: per-feature drift against the champion's training data.
    ``new_category_share``: the share of this round's rows with a category the champion never
    saw; ``degradation``: the champion's MAE on these rows against its own test MAE (0.25: 25 %
    worse); ``schema_changed``: feature columns whose type changed since the dataset's first answer.
    """
    share = new_rows / total_rows if total_rows else 0.0
    score = max(drift.values()) if drift else None
    worst = max(drift, key=drift.get) if drift else None
    triggers = [
        Trigger(name="first_model", fired=not has_champion),
        Trigger(
            name="new_rows",
            fired=share >= settings.retrain_min_new_share,
            value=round(share, 4),
            threshold=settings.retrain_min_new_share,
        ),
        Trigger(
            name="drift",
            fired=bool(settings.drift_trigger and score is not None and score >= settings.drift_threshold),
            value=score,
            threshold=settings.drift_threshold,
            detail=worst if settings.drift_trigger else "disabled",
        ),
        Trigger(
            name="new_categories",
            fired=new_category_share is not None and new_category_share >= settings.retrain_new_category_share,
            value=new_category_share,
            threshold=settings.retrain_new_category_share,
        ),
        Trigger(
            name="degradation",
            fired=degradation is not None and degradation >= settings.retrain_max_degradation,
            value=degradation,
            threshold=settings.retrain_max_degradation,
        ),
        Trigger(
            name="schema",
            fired=bool(schema_changed),
            value=float(len(schema_changed or [])),
            threshold=1.0,
            detail=", ".join(schema_changed or []) or None,
        ),
    ]
    if not has_champion:  # nothing to compare with: only first_model applies
        for t in triggers[1:]:
            t.fired, t.detail = False, "no champion"
    if rows == 0:
        retrain, cause = False, Cause.NO_ROWS
    elif not any(t.fired for t in triggers):
        retrain, cause = False, Cause.NO_TRIGGER
    elif train_rows is not None and train_rows < settings.min_train_rows:
        retrain, cause = False, Cause.TOO_FEW_ROWS
    else:
        retrain, cause = True, Cause.TRIGGERED
    return Decision(
        retrain=retrain,
        cause=cause,
        triggers=triggers,
        new_rows=new_rows,
        total_rows=total_rows,
        new_share=round(share, 4),
        drift_score=score,
        drift=drift,
        train_rows=train_rows,
        min_train_rows=settings.min_train_rows,
    )
