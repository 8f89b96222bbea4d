"""Step 4: fit the model on every clean training row so far, log it to MLflow, register it."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mlops_cli.errors import MlopsError
from mlops_cli.schema import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES, TARGET
from mlops_cli.storage import clean_data, engine_for, read_table

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline
    from sqlalchemy.engine import Engine

    from mlops_cli.settings import Settings

MODEL_TYPES = ("linear", "ridge")
MIN_TRAIN_ROWS = 20


@dataclass
class TrainResult:
    batch: int
    version: int
    run_id: str
    metrics: dict[str, float]
    rows_train: int
    rows_test: int
    batches: list[int] = field(default_factory=list)


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


def training_data(engine: Engine, up_to_batch: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) clean rows of every batch up to ``up_to_batch``."""
    rows = read_table(engine, clean_data, clean_data.c.batch <= up_to_batch)
    return rows[rows["split"] == "train"], rows[rows["split"] == "test"]


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


def train_model(
    settings: Settings, batch: int, engine: Engine | None = None, model_type: str = "linear"
) -> TrainResult:
    """Fit on train rows of batches ≤ ``batch``, score on their test rows, log and register."""
    from mlops_cli.registry import configure, offline_mlflow_env

    offline_mlflow_env()
    import mlflow
    from mlflow.models import infer_signature

    engine = engine or engine_for(settings)
    train, test = training_data(engine, batch)
    if len(train) < MIN_TRAIN_ROWS:
        raise MlopsError(f"only {len(train)} training rows up to batch {batch}; need at least {MIN_TRAIN_ROWS}")
    evaluation = test if len(test) else train
    pipeline = build_pipeline(settings.max_categories, model_type)
    pipeline.fit(train[FEATURES], train[TARGET])
    metrics = regression_metrics(evaluation[TARGET].to_numpy(), pipeline.predict(evaluation[FEATURES]))
    batches = sorted(int(b) for b in train["batch"].unique())
    client = configure(settings)
    tags = {
        "batch": str(batch),
        "batches": ",".join(map(str, batches)),
        "rows_train": str(len(train)),
        "rows_test": str(len(test)),
        "model_type": model_type,
    }
    example = train[FEATURES].head(5)
    # MLflow prints "Successfully registered model ..." straight to stderr; our CLI reports it.
    with mlflow.start_run(run_name=f"batch-{batch}") as run, contextlib.redirect_stderr(io.StringIO()):
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
        mlflow.set_tags(tags)
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
    version = int(info.registered_model_version)
    for key, value in {**tags, **{k: repr(v) for k, v in metrics.items()}}.items():
        client.set_model_version_tag(settings.model_name, str(version), key, value)
    return TrainResult(batch, version, run.info.run_id, metrics, len(train), len(test), batches)
