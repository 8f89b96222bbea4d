"""Step 4: fit the model on the clean training rows, log it to an MLflow run, register a version."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlops_cli.errors import MlopsError
from mlops_cli.pipeline.faults import checkpoint
from mlops_cli.registry.scoring import regression_metrics
from mlops_cli.registry.signing import sign_version
from mlops_cli.schema import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES, TARGET

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd
    from mlflow import MlflowClient
    from sklearn.pipeline import Pipeline

    from mlops_cli.config import Settings

MODEL_TYPES = ("linear", "ridge")
MIN_TRAIN_ROWS = 20
METRICS = ("rmse", "mae", "r2", "mape")


@dataclass(kw_only=True)
class TrainResult:
    version: int
    run_id: str
    metrics: dict[str, float]
    rows_train: int
    rows_test: int


def build_pipeline(max_categories: int, model_type: str = "linear") -> Pipeline:
    """OneHotEncoder on city/state/zip (bounded, unknowns pooled), median imputation, regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="unknown")),
            (
                "onehot",
                OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=max_categories, min_frequency=3),
            ),
        ]
    )
    features = ColumnTransformer(
        [
            ("categorical", categorical, CATEGORICAL_FEATURES),
            ("numeric", SimpleImputer(strategy="median"), NUMERIC_FEATURES),
        ]
    )
    regressor = Ridge(alpha=1.0) if model_type == "ridge" else LinearRegression()
    return Pipeline([("features", features), ("regressor", regressor)])


def _pip_requirements() -> list[str]:
    # Pinning what we know avoids MLflow's slow requirement inference on every log.
    import mlflow
    import pandas
    import sklearn

    return [
        f"mlflow=={mlflow.__version__}",
        f"scikit-learn=={sklearn.__version__}",
        f"pandas=={pandas.__version__}",
        f"numpy=={np.__version__}",
    ]


def fit(settings: Settings, train: pd.DataFrame, test: pd.DataFrame, model_type: str) -> tuple[Pipeline, dict]:
    """Fit on ``train``; metrics on ``test`` (on ``train`` when there is no test row yet)."""
    if len(train) < MIN_TRAIN_ROWS:
        raise MlopsError(f"only {len(train)} training rows; need at least {MIN_TRAIN_ROWS}")
    evaluation = test if len(test) else train
    pipeline = build_pipeline(settings.max_categories, model_type)
    pipeline.fit(train[FEATURES], train[TARGET])
    return pipeline, regression_metrics(evaluation[TARGET].to_numpy(), pipeline.predict(evaluation[FEATURES]))


def _version_of_run(client: MlflowClient, settings: Settings, run_id: str) -> int | None:
    found = client.search_model_versions(f"name='{settings.model_name}' and run_id='{run_id}'")
    return max((int(mv.version) for mv in found), default=None)


def adopt_earlier_attempt(
    client: MlflowClient, settings: Settings, experiment_id: str, tags: dict[str, str]
) -> TrainResult | None:
    """After a crash: the version an earlier attempt with these ``tags`` registered, if any.

    Its run is ended FINISHED and its tags completed. Runs of earlier attempts that registered
    nothing are ended FAILED, so no run stays RUNNING forever.
    """
    query = " and ".join(f"tags.{key} = '{tags[key]}'" for key in ("round", "dataset"))
    adopted: TrainResult | None = None
    for run in client.search_runs([experiment_id], filter_string=query):
        version = _version_of_run(client, settings, run.info.run_id)
        if version is not None and adopted is None:
            metrics = {key: run.data.metrics[key] for key in METRICS if key in run.data.metrics}
            ours = {key: value for key, value in run.data.tags.items() if not key.startswith("mlflow.")}
            _tag_version(client, settings, version, ours, metrics)
            if run.info.status == "RUNNING":
                client.set_terminated(run.info.run_id, status="FINISHED")
            adopted = TrainResult(
                version=version,
                run_id=run.info.run_id,
                metrics=metrics,
                rows_train=int(run.data.metrics.get("rows_train", 0)),
                rows_test=int(run.data.metrics.get("rows_test", 0)),
            )
        elif run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status="FAILED")
    return adopted


def _tag_version(
    client: MlflowClient, settings: Settings, version: int, tags: dict[str, str], metrics: dict[str, float]
) -> None:
    for key, value in {**tags, **{k: repr(v) for k, v in metrics.items()}}.items():
        client.set_model_version_tag(settings.model_name, str(version), key, value)


def train_and_register(
    client: MlflowClient,
    settings: Settings,
    experiment_id: str,
    *,
    train: pd.DataFrame,
    test: pd.DataFrame,
    tags: dict[str, str],
    run_name: str,
    model_type: str = "linear",
    on_run_started: Callable[[str], None] | None = None,
) -> TrainResult:
    """Fit on ``train``, score on ``test``, log to a new MLflow run tagged ``tags`` and register a
    version of the model carrying the same tags and its metrics."""
    from mlops_cli.registry.client import offline_mlflow_env

    offline_mlflow_env()
    import mlflow
    from mlflow.models import infer_signature

    pipeline, metrics = fit(settings, train, test, model_type)
    tags = {**tags, "rows_train": str(len(train)), "rows_test": str(len(test)), "model_type": model_type}
    run = client.create_run(experiment_id, run_name=run_name, tags=tags)
    if on_run_started:
        on_run_started(run.info.run_id)
    example = train[FEATURES].head(5)
    # MLflow prints "Successfully registered model ..." straight to stderr; our CLI reports it.
    with mlflow.start_run(run_id=run.info.run_id), contextlib.redirect_stderr(io.StringIO()):
        mlflow.log_params(
            {
                "model_type": model_type,
                "max_categories": settings.max_categories,
                "features": ",".join(FEATURES),
                "test_size": settings.test_size,
                "split_seed": settings.split_seed,
            }
        )
        mlflow.log_metrics({**metrics, "rows_train": len(train), "rows_test": len(test)})
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=infer_signature(example, pipeline.predict(example)),
            input_example=example,
            registered_model_name=settings.model_name,
            pip_requirements=_pip_requirements(),
            # skops (MLflow's safe format) must be told the plain numpy dtypes are fine to load
            skops_trusted_types=["numpy.dtype"],
        )
        checkpoint("registered", int(tags["batch"]) if tags.get("batch", "").isdigit() else None)
    version = int(info.registered_model_version)
    _tag_version(client, settings, version, tags, metrics)
    sign_version(client, settings, version, run.info.run_id)  # what the inference API will load
    return TrainResult(
        version=version, run_id=run.info.run_id, metrics=metrics, rows_train=len(train), rows_test=len(test)
    )
