"""Scores of a model on listings: the metrics every version is logged and compared with."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_cli.errors import RegistryError

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


@lru_cache(maxsize=16)
def _load(uri: str, tracking: str) -> Any:
    import mlflow.sklearn

    return mlflow.sklearn.load_model(uri)


def load_model(settings: Settings, version: int | str) -> Any:
    """The fitted sklearn pipeline of a registered version (cached: versions never change)."""
    from mlops_cli.registry.client import connect

    connect(settings)  # MLflow resolves models:/ URIs against the current registry URI
    try:
        return _load(f"models:/{settings.model_name}/{version}", str(settings.mlflow_tracking_uri))
    except Exception as exc:
        raise RegistryError(f"cannot load {settings.model_name} version {version}: {exc}") from None


def rmse_on(settings: Settings, version: int | str, test: pd.DataFrame) -> float:
    """RMSE of a registered version on ``test`` (features + price)."""
    from mlops_cli.registry.scoring import regression_metrics
    from mlops_cli.schema import FEATURES, TARGET

    model = load_model(settings, version)
    return regression_metrics(test[TARGET].to_numpy(), model.predict(test[FEATURES]))["rmse"]
