"""Gradient-boosted trees on a fast path: the registered HistGradientBoosting pipeline compiled,
at load, to treelite's tree evaluator (GTIL) fed by plain dictionary lookups, so one prediction
costs tens of microseconds instead of a pandas round trip through ColumnTransformer and sklearn.

What is compiled is only what is recognised: log-price target (TransformedTargetRegressor with
exp), a ColumnTransformer of an OrdinalEncoder over the text features and the numbers passed
through, optionally the location features (pipeline/location.py: per-row dictionary lookups, the
very ones its ``transform`` does), then a HistGradientBoostingRegressor. The codes of every category seen in training
come from the encoder's own ``transform`` (infrequent categories pooled exactly as it pools
them); anything unknown or missing is NaN, as the encoder makes it. The result is checked
against the model's own ``predict`` on random mixed rows (unknown categories and missing values
included); any model it does not match is served through pyfunc, with the reason in /model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_cli.registry.scoring import known_categories
from mlops_cli.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from serving.encoding import NotFoldable, agree, category_key, normalise_category, normalised_rows

TOLERANCE = 1e-6  # relative, against the model's own predict


class _Evaluator:
    """treelite's documented C entry point (TreeliteGTILPredict) with its configuration parsed once:
    ``treelite.gtil.predict`` parses a JSON configuration and asks the model its types and output
    shape on every call — seven foreign calls, each releasing the GIL, for one row."""

    def __init__(self, model: Any) -> None:
        import ctypes

        from treelite.core import _LIB, _check_call
        from treelite.gtil.gtil import GTILConfig
        from treelite.util import c_str

        if (model.input_type, model.output_type) != ("float64", "float64"):
            raise NotFoldable(f"treelite model types {model.input_type}/{model.output_type}, not float64")
        self.model, self._lib, self._check = model, _LIB, _check_call
        self._config = GTILConfig(nthread=1, predict_type="default")  # kept alive: it owns the handle
        self._type = c_str("float64")
        self._double = ctypes.POINTER(ctypes.c_double)
        self._rows = ctypes.c_uint64

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        out = np.zeros(len(matrix), dtype=np.float64)  # one target, one class: (n, 1, 1) flattened
        self._check(
            self._lib.TreeliteGTILPredict(
                self.model.handle,
                matrix.ctypes.data_as(self._double),
                self._type,
                self._rows(len(matrix)),
                out.ctypes.data_as(self._double),
                self._config.handle,
            )
        )
        return out


@dataclass(kw_only=True)
class CompiledTrees:
    evaluate: _Evaluator
    codes: dict[str, dict[str, float]]
    exp: bool
    location: Any = None  # the pipeline's LocationFeatures (pipeline/location.py), if it has them
    checked_rows: int = 0

    def _matrix(self, rows: list[dict[str, Any]], unseen: list[list[str]] | None) -> np.ndarray:
        width = len(CATEGORICAL_FEATURES) + len(NUMERIC_FEATURES)
        matrix = np.full((len(rows), width + (len(self.location.outputs_) if self.location else 0)), np.nan)
        for i, row in enumerate(rows):
            trained: dict[str, Any] = {}  # each text value in the form training had (location lookups)
            for j, name in enumerate(CATEGORICAL_FEATURES):
                value = row.get(name)
                if value is None:
                    continue
                code = self.codes[name].get(value)
                if code is None:  # not as sent: in the trained form, blank, or never seen
                    key, new = category_key(name, value, self.codes[name])
                    code = None if key is None else self.codes[name][key]
                    if new and unseen is not None:
                        unseen[i].append(name)
                    trained[name] = key if key is not None or not new else normalise_category(name, value)
                else:
                    trained[name] = value
                if code is not None:
                    matrix[i, j] = code
            for j, name in enumerate(NUMERIC_FEATURES, start=len(CATEGORICAL_FEATURES)):
                value = row.get(name)
                if value is not None:
                    matrix[i, j] = value
            if self.location is not None:
                place = (trained.get("state"), trained.get("city"), trained.get("zip_code"))
                matrix[i, width:] = self.location.row(*place)
        return matrix

    def _predict(self, matrix: np.ndarray) -> list[float]:
        margins = self.evaluate(matrix)
        if len(margins) == 1:
            return [math.exp(margins[0]) if self.exp else float(margins[0])]
        return (np.exp(margins) if self.exp else margins).tolist()

    def predict(self, rows: list[dict[str, Any]]) -> list[float]:
        return self._predict(self._matrix(rows, None))

    def predict_marked(self, rows: list[dict[str, Any]]) -> tuple[list[float], list[list[str]]]:
        unseen: list[list[str]] = [[] for _ in rows]
        return self._predict(self._matrix(rows, unseen)), unseen

    def explainer(self, explainer: Any) -> TreeExplainer:
        """TreeSHAP of these trees on the matrix this path builds (no pandas round trip)."""
        return TreeExplainer(self, explainer)


class TreeExplainer:
    """``(rows, prices)`` → explanations: LightGBM's TreeSHAP on the compiled path's matrix. The
    API awaits :meth:`explain_async`, whose TreeSHAP runs in the batcher's thread (with the other
    requests' rows waiting then) while the event loop answers others."""

    def __init__(self, trees: CompiledTrees, explainer: Any) -> None:
        self.trees, self.explainer = trees, explainer
        self._treeshap = explainer.treeshap  # one bound method: the batcher groups calls by it

    def _explained(
        self, contrib: np.ndarray, dense: np.ndarray, rows: list[dict[str, Any]], prices: list[float]
    ) -> list[dict[str, Any]]:
        from mlops_cli.pipeline.explain import answers

        terms = self.explainer.treeshap_terms(contrib, dense, normalised_rows(rows))
        return answers(self.explainer.scale, *terms, prices)

    def __call__(self, rows: list[dict[str, Any]], prices: list[float]) -> list[dict[str, Any]]:
        dense = self.trees._matrix(rows, None)
        return self._explained(self._treeshap(dense), dense, rows, prices)

    async def explain_async(self, rows: list[dict[str, Any]], prices: list[float]) -> list[dict[str, Any]]:
        from serving.batcher import BATCHER

        dense = self.trees._matrix(rows, None)
        return self._explained(await BATCHER(self._treeshap, dense), dense, rows, prices)


def compile_trees(model: Any, seed: int = 0) -> CompiledTrees:
    """Compile ``model`` or raise :class:`NotFoldable` (with why)."""
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    exp = False
    inner = model
    if isinstance(model, TransformedTargetRegressor):
        if model.inverse_func is not np.exp:
            raise NotFoldable("the target transform is not exp(log price)")
        exp, inner = True, model.regressor_
    if not (isinstance(inner, Pipeline) and len(inner.steps) == 2):
        raise NotFoldable("not a features → trees pipeline")
    features, trees = inner.steps[0][1], inner.steps[1][1]
    lightgbm = type(trees).__module__.startswith("lightgbm") and type(trees).__name__ == "LGBMRegressor"
    if not (isinstance(trees, HistGradientBoostingRegressor) or lightgbm) or not isinstance(
        features, ColumnTransformer
    ):
        raise NotFoldable("not HistGradientBoosting or LightGBM on a ColumnTransformer")
    parts = [(name, t, list(cols)) for name, t, cols in features.transformers_ if name != "remainder"]

    def kind(transformer: Any) -> str:  # a fitted "passthrough" is an identity FunctionTransformer
        if isinstance(transformer, str):
            return transformer
        identity = type(transformer).__name__ == "FunctionTransformer" and transformer.func is None
        return "passthrough" if identity else type(transformer).__name__

    from mlops_cli.pipeline.location import INPUTS, LocationFeatures

    layout = [(kind(t), cols) for _, t, cols in parts]
    expected = [("OrdinalEncoder", CATEGORICAL_FEATURES), ("passthrough", NUMERIC_FEATURES)]
    location = parts[2][1] if len(parts) == 3 and isinstance(parts[2][1], LocationFeatures) else None
    if location is not None:
        expected.append(("LocationFeatures", INPUTS))
    if layout != expected:
        raise NotFoldable(f"unrecognised feature layout {layout}")
    encoder: OrdinalEncoder = parts[0][1]
    codes: dict[str, dict[str, float]] = {}
    for j, name in enumerate(CATEGORICAL_FEATURES):
        seen = [c for c in encoder.categories_[j] if isinstance(c, str)]
        probe = np.full((len(seen), len(CATEGORICAL_FEATURES)), None, dtype=object)
        probe[:, j] = seen
        import pandas as pd

        encoded = encoder.transform(pd.DataFrame(probe, columns=CATEGORICAL_FEATURES))[:, j]
        codes[name] = {value: float(code) for value, code in zip(seen, encoded, strict=True) if not math.isnan(code)}
    try:
        import warnings

        import treelite.frontend
        import treelite.sklearn

        with warnings.catch_warnings():
            # treelite casts sklearn's category list to integers, NaN included when the trees were
            # fitted with missing text (seen at every load in `mlops logs api`); what it makes of
            # the missing branch is checked below against the model's own predictions
            warnings.filterwarnings("ignore", "invalid value encountered in cast", RuntimeWarning)
            imported = (
                treelite.frontend.from_lightgbm(trees.booster_) if lightgbm else treelite.sklearn.import_model(trees)
            )
            evaluate = _Evaluator(imported)
    except NotFoldable:
        raise
    except Exception as exc:  # treelite's own word on what it cannot take
        raise NotFoldable(f"treelite cannot import these trees: {type(exc).__name__}: {exc}") from None
    compiled = CompiledTrees(evaluate=evaluate, codes=codes, exp=exp, location=location)
    compiled.checked_rows = check(compiled, model, known_categories(model), seed)
    return compiled


def check(compiled: CompiledTrees, model: Any, cats: dict[str, list[str]], seed: int = 0, n: int = 256) -> int:
    """Compiled against the model's own predictions on random mixed rows; NotFoldable on mismatch."""
    return agree(compiled.predict, model, cats, TOLERANCE, "compiled trees", seed, n)
