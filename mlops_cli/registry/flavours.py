"""Loading a logged model from a verified local copy of its files, through MLflow's flavours."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_cli.registry.client import offline_mlflow_env

if TYPE_CHECKING:
    from pathlib import Path


def load_estimator(folder: Path | str) -> Any:
    """The fitted scikit-learn estimator (raises if the model is not of the sklearn flavour)."""
    offline_mlflow_env()
    import mlflow.sklearn

    return mlflow.sklearn.load_model(str(folder))


def load_pyfunc(folder: Path | str) -> Any:
    """MLflow's generic python_function wrapper around whatever flavour was logged."""
    offline_mlflow_env()
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(folder))
