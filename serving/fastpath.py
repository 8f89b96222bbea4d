"""Fold a registered additive pipeline (one-hot + imputation + linear model) into plain
lookups and a dot product, so one prediction costs microseconds instead of a pandas
round trip through ColumnTransformer (measured in bench/serve.py).

The folding is derived from the model itself by probing its ``predict``: for an additive
model, changing one feature moves the prediction by that feature's contribution alone.
The result is then checked against the model on mixed rows; any model for which that
check fails (a tree, interactions, another encoder) is not folded and the caller falls
back to the pyfunc path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops_cli.registry.scoring import estimators as _walk
from mlops_cli.registry.scoring import known_categories
from mlops_cli.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from serving.encoding import UNKNOWN_PROBE, NotFoldable, _frame, agree, category_key

# Predictions must agree with the model to this relative tolerance, or we do not fold.
TOLERANCE = 1e-9


@dataclass(kw_only=True)
class FoldedModel:
    intercept: float
    categories: dict[str, dict[str, float]]
    unknown: dict[str, float]
    missing: dict[str, float]
    weights: dict[str, float]
    fill: dict[str, float]
    checked_rows: int = 0
    order: list[tuple[str, bool]] = field(default_factory=list)
    log_numbers: bool = False  # the numbers enter as log1p(value) (loglinear)
    log_price: bool = False  # the sum is log(price): the price is exp(sum)

    def _category(self, name: str, value: Any, unseen: list[str] | None) -> float:
        if value is None:
            return self.missing[name]
        contribution = self.categories[name].get(value)
        if contribution is None:  # not as sent: in the trained form, blank, or never seen
            key, new = category_key(name, value, self.categories[name])
            contribution = self.categories[name][key] if key is not None else self.unknown[name]
            if key is None and not new:
                contribution = self.missing[name]
            if new and unseen is not None:
                unseen.append(name)
        return contribution

    def _number(self, name: str, value: Any) -> float:
        if value is None:
            return self.weights[name] * self.fill[name]
        return self.weights[name] * (math.log1p(value) if self.log_numbers else value)

    def predict_one(self, row: dict[str, Any], unseen: list[str] | None = None) -> float:
        """The price of ``row``; the text fields it holds that training never saw are appended
        to ``unseen`` (when given): they are priced as the pooled unknown category."""
        total = self.intercept
        for name in CATEGORICAL_FEATURES:
            total += self._category(name, row.get(name), unseen)
        for name in NUMERIC_FEATURES:
            total += self._number(name, row.get(name))
        return math.exp(total) if self.log_price else total

    def terms(self, row: dict[str, Any]) -> list[float]:
        """Each feature's term of ``row`` (in ``FEATURES`` order): the intercept plus these is
        what :meth:`predict_one` sums (log price for a log-price model)."""
        return [self._category(name, row.get(name), None) for name in CATEGORICAL_FEATURES] + [
            self._number(name, row.get(name)) for name in NUMERIC_FEATURES
        ]

    def predict(self, rows: list[dict[str, Any]]) -> list[float]:
        return [self.predict_one(row) for row in rows]

    def predict_marked(self, rows: list[dict[str, Any]]) -> tuple[list[float], list[list[str]]]:
        """Prices and, per row, the fields never seen in training, in one pass."""
        unseen: list[list[str]] = [[] for _ in rows]
        return [self.predict_one(row, marks) for row, marks in zip(rows, unseen, strict=True)], unseen


def _log_numbers(model: Any) -> bool:
    """Whether the numbers are log1p-scaled before the linear model (loglinear's recipe)."""
    return any(getattr(step, "func", None) is np.log1p for step in _walk_all(model))


def _walk_all(model: Any) -> list[Any]:
    """``_walk`` and the transformers of pipelines nested in column transformers."""
    out = []
    for step in _walk(model):
        out.append(step)
        for _, transformer, _columns in getattr(step, "transformers_", []) or []:
            out.extend(_walk(transformer))
    return out


def fold(model: Any, rng_seed: int = 0) -> FoldedModel:
    """Fold ``model`` (anything with ``predict(DataFrame)``) or raise :class:`NotFoldable`.

    A log-price model (exp of a linear model, as ``loglinear`` is) folds in log space: its
    inner pipeline is folded and checked there, and the price is exp of the sum."""
    if hasattr(model, "regressor_"):
        if not (model.func is np.log and model.inverse_func is np.exp):
            raise NotFoldable("the target transform is not exp(log price)")
        folded = fold(model.regressor_, rng_seed)
        folded.log_price = True
        return folded
    cats = known_categories(model)
    missing_features = [name for name in CATEGORICAL_FEATURES if name not in cats]
    if missing_features:
        raise NotFoldable(f"no fitted encoder found for {', '.join(missing_features)}")
    base_cat = {name: (cats[name][0] if cats[name] else UNKNOWN_PROBE) for name in CATEGORICAL_FEATURES}
    log_numbers = _log_numbers(model)
    unit = math.e - 1 if log_numbers else 1.0  # the value whose scaled form is 1
    base = {**base_cat, **dict.fromkeys(NUMERIC_FEATURES, 0.0)}
    probes: list[dict[str, Any]] = [base]
    for name in CATEGORICAL_FEATURES:
        probes += [{**base, name: value} for value in [*cats[name], UNKNOWN_PROBE, None]]
    for name in NUMERIC_FEATURES:
        probes += [{**base, name: unit}, {**base, name: float("nan")}]
    predicted = np.asarray(model.predict(_frame(probes)), dtype=float)
    intercept = float(predicted[0])
    position = 1
    categories: dict[str, dict[str, float]] = {}
    unknown: dict[str, float] = {}
    missing: dict[str, float] = {}
    for name in CATEGORICAL_FEATURES:
        values = cats[name]
        deltas = predicted[position : position + len(values) + 2] - intercept
        categories[name] = {value: float(d) for value, d in zip(values, deltas, strict=False)}
        unknown[name], missing[name] = float(deltas[-2]), float(deltas[-1])
        position += len(values) + 2
    weights: dict[str, float] = {}
    fill: dict[str, float] = {}
    for name in NUMERIC_FEATURES:
        one, nan = predicted[position] - intercept, predicted[position + 1] - intercept
        weights[name] = float(one)
        fill[name] = float(nan / one) if one != 0 else 0.0
        position += 2
    folded = FoldedModel(
        intercept=intercept,
        categories=categories,
        unknown=unknown,
        missing=missing,
        weights=weights,
        fill=fill,
        log_numbers=log_numbers,
    )
    folded.checked_rows = check(folded, model, cats, rng_seed)
    return folded


def check(folded: FoldedModel, model: Any, cats: dict[str, list[str]], seed: int = 0, n: int = 256) -> int:
    """Compare folded and real predictions on random mixed rows; raise NotFoldable on mismatch."""
    return agree(folded.predict, model, cats, TOLERANCE, "folded predictions", seed, n)


class FoldedExplainer:
    """A folded linear model's explanations at its own speed: its per-feature terms differ from
    the pipeline's (:class:`mlops_cli.pipeline.explain.Explainer`) by one constant per feature,
    measured once on an all-missing listing, so shifting them gives the pipeline's centred
    contributions exactly (tested against it)."""

    def __init__(self, folded: FoldedModel, explainer: Any) -> None:
        from mlops_cli.pipeline.explain import answers
        from mlops_cli.schema import FEATURES

        reference = dict.fromkeys(FEATURES)
        base, contrib, names, _ = explainer.terms(_frame([reference]))
        self.folded, self.scale, self.names, self.base = folded, explainer.scale, names, float(base[0])
        self.shift = np.asarray(folded.terms(reference)) - contrib[0]
        self._answers = answers

    def __call__(self, rows: list[dict[str, Any]], prices: list[float]) -> list[dict[str, Any]]:
        contrib = np.array([self.folded.terms(row) for row in rows]) - self.shift
        values = [[row.get(name) for name in self.names] for row in rows]
        bases = [self.base] * len(rows)
        return self._answers(self.scale, bases, contrib, self.names, values, prices)
