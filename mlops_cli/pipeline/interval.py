"""A price range around each prediction: split-conformal calibration on the validation rows.

The chosen candidate is fitted on most training rows and scored on the validation rows it never
saw (``fit.choose_model``); the absolute errors there — of log(price) for a log-price model, of
the price otherwise — give the half-width that covers ``LEVEL`` of them with the finite-sample
correction (the ⌈(n+1)·level⌉-th smallest error). The registered model carries it
(:func:`attach`); every serving path reads it back (:func:`interval_of`) and answers
``price × exp(∓w)`` (log) or ``price ∓ w`` (never below 0).

The guarantee is marginal: about ``LEVEL`` of future listings drawn like the validation rows fall
inside, not each listing with that probability. The final model is refitted on every training
row, so its errors are if anything a little smaller than the calibrated ones.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

LEVEL = 0.8
ATTRIBUTE = "mlops_interval_"  # on the registered estimator: saved and signed with it
MIN_ROWS = 10  # fewer validation rows calibrate nothing


@dataclass(frozen=True, kw_only=True)
class Interval:
    level: float
    scale: str  # "log": price × exp(±half_width); "price": price ± half_width
    half_width: float
    rows: int  # validation rows it was calibrated on

    def bounds(self, price: float) -> tuple[float, float]:
        if self.scale == "log":
            spread = math.exp(self.half_width)
            return price / spread, price * spread
        return max(0.0, price - self.half_width), max(0.0, price + self.half_width)

    def bounds_of(self, prices: Any) -> tuple[np.ndarray, np.ndarray]:
        prices = np.asarray(prices, dtype=float)
        if self.scale == "log":
            spread = math.exp(self.half_width)
            return prices / spread, prices * spread
        return np.maximum(prices - self.half_width, 0.0), np.maximum(prices + self.half_width, 0.0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def log_price_model(model: Any) -> bool:
    """Whether ``model`` predicts exp(…) of a log-price regression (its errors are relative)."""
    return getattr(model, "inverse_func", None) is np.exp


def calibrate(model: Any, actual: Any, predicted: Any, level: float = LEVEL) -> Interval | None:
    """The half-width covering ``level`` of the validation errors, or None with too few rows."""
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    keep = np.isfinite(actual) & np.isfinite(predicted) & (actual > 0) & (predicted > 0)
    actual, predicted = actual[keep], predicted[keep]
    n = len(actual)
    if n < MIN_ROWS:
        return None
    scale = "log" if log_price_model(model) else "price"
    errors = np.abs(np.log(actual) - np.log(predicted)) if scale == "log" else np.abs(actual - predicted)
    rank = min(n, math.ceil((n + 1) * level))  # the conformal quantile's finite-sample correction
    return Interval(level=level, scale=scale, half_width=float(np.sort(errors)[rank - 1]), rows=n)


def attach(model: Any, interval: Interval | None) -> None:
    if interval is not None:
        setattr(model, ATTRIBUTE, interval.as_dict())


def interval_of(model: Any) -> Interval | None:
    found = getattr(model, ATTRIBUTE, None)
    if not isinstance(found, dict):
        return None
    try:
        interval = Interval(
            level=float(found["level"]),
            scale=str(found["scale"]),
            half_width=float(found["half_width"]),
            rows=int(found["rows"]),
        )
    except (KeyError, TypeError, ValueError):
        return None
    ok = interval.scale in ("log", "price") and 0 < interval.level < 1 and math.isfinite(interval.half_width)
    return interval if ok and interval.half_width >= 0 else None


def coverage(interval: Interval, actual: Any, predicted: Any) -> dict[str, float]:
    """Share of ``actual`` inside the intervals around ``predicted``, and their median width."""
    actual = np.asarray(actual, dtype=float)
    low, high = interval.bounds_of(predicted)
    inside = (actual >= low) & (actual <= high)
    return {
        "interval_coverage": float(inside.mean()) if len(actual) else float("nan"),
        "interval_median_width": float(np.median(high - low)) if len(actual) else float("nan"),
    }
