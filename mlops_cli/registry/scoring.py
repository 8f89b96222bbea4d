"""Scores of a model on listings: the metrics every version is logged and compared with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_cli.errors import ModelNotLoadable

if TYPE_CHECKING:
    import pandas as pd

    from mlops_cli.config import Settings


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    error = predicted - actual
    total = float(np.sum((actual - actual.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": float(1 - np.sum(error**2) / total) if total > 0 else 0.0,
        "mape": float(np.mean(np.abs(error) / np.abs(actual))),
    }


# Verified models by (tracking URI, model name, version): a version's artifacts never change,
# and one that was verified once stays what was verified (it is held in memory, not re-read).
_verified: dict[tuple[str, str, int], Any] = {}


def load_model(settings: Settings, version: int | str) -> Any:
    """The fitted sklearn pipeline of a registered version, deserialised only after its artifacts
    verified against their signature (ModelRefused otherwise; cached once verified)."""
    from mlops_cli.registry.client import connect, resolve_version
    from mlops_cli.registry.flavours import load_estimator
    from mlops_cli.registry.refs import version_number
    from mlops_cli.registry.signing import verified_model

    client = connect(settings)
    number = version_number(version)
    if number is None:  # an alias: the version it points at now
        number = int(resolve_version(client, settings, version).version)
    key = (str(settings.mlflow_tracking_uri), settings.model_name, number)
    if key in _verified:
        return _verified[key]
    mv = resolve_version(client, settings, number)
    with verified_model(settings, mv) as folder:
        try:
            model = load_estimator(folder)
        except Exception as exc:
            raise ModelNotLoadable(f"cannot load {settings.model_name} version {version}: {exc}") from None
    if len(_verified) >= 16:
        _verified.pop(next(iter(_verified)))
    _verified[key] = model
    return model


def metrics_on(settings: Settings, version: int | str, test: pd.DataFrame) -> dict[str, float]:
    """Every metric of a registered version on ``test`` (features + price)."""
    from mlops_cli.schema import FEATURES, TARGET

    model = load_model(settings, version)
    return regression_metrics(test[TARGET].to_numpy(), model.predict(test[FEATURES]))


def rmse_on(settings: Settings, version: int | str, test: pd.DataFrame) -> float:
    """RMSE of a registered version on ``test`` (features + price)."""
    return metrics_on(settings, version, test)["rmse"]


def known_categories(model: Any) -> dict[str, list[str]]:
    """The categories the model's encoders saw in training, by input column."""
    found: dict[str, list[str]] = {}
    for step in estimators(model):
        for _, transformer, columns in getattr(step, "transformers_", []) or []:
            for inner in estimators(transformer):
                if hasattr(inner, "categories_") and isinstance(columns, list | tuple):
                    for name, cats in zip(columns, inner.categories_, strict=False):
                        found[str(name)] = [str(c) for c in cats if isinstance(c, str)]
    return found


def estimators(model: Any) -> list[Any]:
    """Every estimator nested in pipelines and column transformers."""
    out = [model]
    for attr in ("steps", "transformers_"):
        for item in getattr(model, attr, []) or []:
            out.extend(estimators(item[1]))
    if hasattr(model, "regressor_"):  # TransformedTargetRegressor (the log-price models)
        out.extend(estimators(model.regressor_))
    return out
