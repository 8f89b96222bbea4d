"""Why this price: each listing's prediction split into exact contributions per model feature.

- **Linear models** (``linear``, ``ridge``, ``loglinear``): the prediction is the intercept plus
  one term per encoded column; the terms of a listing field (its one-hot columns, or its number)
  add up to that field's contribution. Contributions are centred on the training rows' mean
  (what :func:`baseline` attaches at training), as SHAP values of a linear model are, so the base
  is the average prediction and a contribution says how far this listing's value moves it.
- **LightGBM** (``lgbm_*``): TreeSHAP, LightGBM's own ``pred_contrib`` — exact Shapley values of
  the trees, base = the trees' expected value. Its features are the codes, numbers and location
  features the trees see (``latitude``, ``area_log_price`` ...; ``county`` shown by its name).
- **hgb** (scikit-learn's trees with native categorical splits): no exact contributions. shap's
  TreeExplainer accepts the model but ignores its categorical splits (its values missed the
  prediction by up to 0.76 in log price on the shared file, measured): such a model says so.

For a log-price model the contributions add up to log(price) (``scale = "log"``); each also has
its ``effect`` in dollars: how much lower the price would be without it, the others held.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_cli.schema import CATEGORICAL_FEATURES, FEATURES

BASELINE = "mlops_baseline_"
IMPORTANCE_ROWS = 5_000  # on a registered linear model: mean contribution per field in training


class NotExplainable(Exception):
    """The model has no exact per-feature contributions (the message says why)."""


@dataclass(frozen=True)
class Explanation:
    scale: str  # "log" (contributions add up to log(price)) or "price"
    base: float  # the starting point, in the same scale
    price: float
    contributions: list[tuple[str, Any, float]]  # (feature, the listing's value, contribution), largest first

    def as_dict(self) -> dict[str, Any]:
        return _answer(self.scale, self.base, self.price, self.contributions)


def _answer(scale: str, base: float, price: float, terms: Any) -> dict[str, Any]:
    """One listing's explanation as the API answers it; ``terms``: (feature, value, contribution),
    largest first."""
    log = scale == "log"
    return {
        "scale": scale,
        "base": base,
        "base_price": math.exp(base) if log else base,
        "contributions": [
            {
                "feature": feature,
                "value": _plain(value),
                "contribution": c,
                # how much lower the price would be without this term (the others held)
                "effect": price * (1 - math.exp(-c)) if log else c,
            }
            for feature, value, c in terms
        ],
    }


def answers(
    scale: str, base: Any, contrib: np.ndarray, names: list[str], values: list[list[Any]], prices: Any
) -> list[dict[str, Any]]:
    """``[e.as_dict() for e in explanations(...)]`` without the objects between: what the API
    answers (building Explanation objects, then their dicts, cost its event loop ~30 µs a listing)."""
    out = []
    for i, price in enumerate(np.asarray(prices, dtype=float).tolist()):
        order = np.argsort(-np.abs(contrib[i]), kind="stable").tolist()
        terms, shown = contrib[i].tolist(), values[i]
        out.append(_answer(scale, float(base[i]), price, [(names[j], shown[j], terms[j]) for j in order]))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _unwrap(model: Any) -> tuple[Any, bool]:
    """The inner pipeline and whether its output is log(price)."""
    if getattr(model, "inverse_func", None) is np.exp:
        return model.regressor_, True
    return model, False


class Explainer:
    """``explain(frame)`` → one :class:`Explanation` per row of a listings frame (``FEATURES``)."""

    def __init__(self, model: Any) -> None:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline

        inner, self.log = _unwrap(model)
        if not (isinstance(inner, Pipeline) and len(inner.steps) == 2):
            raise NotExplainable("not a features → regressor pipeline")
        self.features, self.regressor = inner.steps[0][1], inner.steps[1][1]
        if not isinstance(self.features, ColumnTransformer):
            raise NotExplainable("its features are not a ColumnTransformer")
        kind = type(self.regressor).__name__
        if kind == "LGBMRegressor":
            self.kind = "treeshap"
            self.names = list(self.features.get_feature_names_out())
        elif hasattr(self.regressor, "coef_") and np.ndim(self.regressor.coef_) == 1:
            self.kind = "linear"
            self.groups = self._groups()
            self.weights = np.zeros((len(self.regressor.coef_), len(self.groups)))
            for g, (_, cols) in enumerate(self.groups):
                self.weights[cols, g] = self.regressor.coef_[cols]
            self.baseline = getattr(model, BASELINE, None) or {}
        else:
            raise NotExplainable(
                f"{kind} has no exact contributions here (native categorical splits: no exact TreeSHAP)"
            )

    def _groups(self) -> list[tuple[str, np.ndarray]]:
        """Per listing field, the encoded columns that belong to it."""
        names = list(self.features.get_feature_names_out())
        groups = []
        for field in FEATURES:
            part = "categorical" if field in CATEGORICAL_FEATURES else "numeric"
            exact = f"{part}__{field}"
            columns = [i for i, n in enumerate(names) if n == exact or n.startswith(exact + "_")]
            groups.append((field, np.array(columns, dtype=np.int64)))
        return groups

    @property
    def scale(self) -> str:
        return "log" if self.log else "price"

    def terms(self, frame: Any) -> tuple[np.ndarray, np.ndarray, list[str], list[list[Any]]]:
        """(base per row, contributions per row and feature, feature names, each row's values)."""
        encoded = self.features.transform(frame[FEATURES])
        listing = frame[FEATURES].astype(object).where(frame[FEATURES].notna(), None).to_dict("records")
        return self.terms_encoded(encoded, listing)

    def terms_encoded(
        self, encoded: Any, listings: list[dict[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray, list[str], list[list[Any]]]:
        """:meth:`terms` from the features as the regressor sees them (a serving path that
        computes them itself hands them over: the compiled trees' matrix)."""
        if self.kind == "treeshap":
            dense = np.asarray(encoded, dtype=float)
            return self.treeshap_terms(self.treeshap(dense), dense, listings)
        # one product with a (columns x fields) matrix of the coefficients: the one-hot matrix stays
        # sparse (a dense copy of 1.8 M training rows x 200 columns would be 2.9 GB)
        raw = np.asarray(encoded @ self.weights, dtype=float)
        names = [field for field, _ in self.groups]
        centre = np.array([float(self.baseline.get(name, 0.0)) for name in names])
        base = np.full(len(listings), float(self.regressor.intercept_) + centre.sum())
        values = [[row.get(name) for name in names] for row in listings]
        return base, raw - centre, names, values

    def treeshap(self, dense: np.ndarray) -> np.ndarray:
        """LightGBM's TreeSHAP of each row of ``dense``: one column per feature, the base last (C
        code that releases the GIL: the API calls it in a thread, serving/batcher.py)."""
        return self.regressor.booster_.predict(dense, pred_contrib=True)

    def treeshap_terms(
        self, contrib: np.ndarray, dense: np.ndarray, listings: list[dict[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray, list[str], list[list[Any]]]:
        """:meth:`terms` from :meth:`treeshap`'s result."""
        if not hasattr(self, "_columns"):  # (name, whether it is a listing field), once
            self._columns = [(_short(n), _short(n) in FEATURES) for n in self.names]
        names = [name for name, _ in self._columns]
        values = [
            [row.get(name) if field else number for (name, field), number in zip(self._columns, numbers, strict=True)]
            for row, numbers in zip(listings, dense.tolist(), strict=True)
        ]
        if "county" in names:  # the trees split on its number; the answer names it
            from mlops_cli.pipeline.location import county_name

            at = names.index("county")
            for row in values:
                row[at] = county_name(row[at])
        return contrib[:, -1], contrib[:, :-1], names, values

    def explain(self, frame: Any, prices: Any) -> list[Explanation]:
        return explanations(self.scale, *self.terms(frame), prices)


def explanations(
    scale: str, base: Any, contrib: np.ndarray, names: list[str], values: list[list[Any]], prices: Any
) -> list[Explanation]:
    """One :class:`Explanation` per row, its terms largest first."""
    out = []
    for i, price in enumerate(np.asarray(prices, dtype=float)):
        order = np.argsort(-np.abs(contrib[i]), kind="stable")
        out.append(
            Explanation(
                scale=scale,
                base=float(base[i]),
                price=float(price),
                contributions=[(names[j], values[i][j], float(contrib[i, j])) for j in order],
            )
        )
    return out


def _short(name: str) -> str:
    """``location__latitude`` → ``latitude``; ``categorical__city`` → ``city``."""
    return name.split("__", 1)[-1]


def explainer_for(model: Any) -> Explainer:
    """The exact explainer of ``model``, or :class:`NotExplainable` with why."""
    return Explainer(model)


def baseline(model: Any, train: Any) -> None:
    """Attach a linear model's mean contribution per field over its training rows (the centre of
    its explanations); other models need none."""
    try:
        explainer = Explainer(model)
    except NotExplainable:
        return
    if explainer.kind != "linear":
        return
    # the fields' mean terms over every training row, without building each row's explanation
    means = np.asarray(explainer.features.transform(train[FEATURES]) @ explainer.weights, dtype=float).mean(axis=0)
    names = [field for field, _ in explainer.groups]
    setattr(model, BASELINE, {name: float(v) for name, v in zip(names, means, strict=True)})


def importance(model: Any, frame: Any) -> dict[str, float] | None:
    """Global importance: the mean |contribution| per feature over ``frame`` (None if unexplainable)."""
    try:
        explainer = Explainer(model)
    except NotExplainable:
        return None
    if not len(frame):
        return None
    if len(frame) > IMPORTANCE_ROWS:  # a mean over 5,000 rows is as good, and TreeSHAP costs per row
        frame = frame.sample(IMPORTANCE_ROWS, random_state=0)
    _, contrib, names, _ = explainer.terms(frame)
    means = np.abs(contrib).mean(axis=0)
    return dict(sorted(((n, float(m)) for n, m in zip(names, means, strict=True)), key=lambda t: -t[1]))
