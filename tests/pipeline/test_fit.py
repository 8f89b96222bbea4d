"""Step 4's model: the seed recipe fitted on clean rows, scored on the test rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_cli.config import load_settings
from mlops_cli.errors import MlopsError
from mlops_cli.pipeline.clean import clean_rows
from mlops_cli.pipeline.fit import CANDIDATES, MIN_TRAIN_ROWS, MODEL_TYPES, build_pipeline, choose_model, fit
from mlops_cli.pipeline.ingest import normalised_rows
from mlops_cli.pipeline.sources import GeneratorSource
from mlops_cli.registry.scoring import regression_metrics
from mlops_cli.schema import FEATURES, TARGET


@pytest.fixture
def rows(home) -> pd.DataFrame:
    settings = load_settings(generator_batch_rows=600)
    raw = normalised_rows(GeneratorSource(settings).rows(0), "test")
    return clean_rows(raw, np.array([], dtype=np.int64), test_size=0.15, seed=1).kept


def test_metrics_are_the_usual_ones() -> None:
    metrics = regression_metrics(np.array([100.0, 200.0, 300.0]), np.array([110.0, 190.0, 330.0]))
    assert metrics["mae"] == pytest.approx(50 / 3)
    assert metrics["rmse"] == pytest.approx(np.sqrt((100 + 100 + 900) / 3))
    assert metrics["r2"] == pytest.approx(1 - 1100 / 20000)
    assert metrics["mape"] == pytest.approx((0.1 + 0.05 + 0.1) / 3)


def test_the_model_is_scored_on_the_test_rows_and_is_reproducible(rows: pd.DataFrame, home) -> None:
    settings = load_settings()
    train, test = rows[rows["split"] == "train"], rows[rows["split"] == "test"]
    model, metrics = fit(settings, train, test, "linear")
    again, same = fit(settings, train, test, "linear")
    assert metrics == same
    expected = regression_metrics(test[TARGET].to_numpy(), model.predict(test[FEATURES]))
    assert metrics == expected and 0 < metrics["r2"] <= 1


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_unknown_categories_and_missing_values_are_predicted(rows: pd.DataFrame, home, model_type: str) -> None:
    model, _ = fit(load_settings(), rows, rows.iloc[:0], model_type)
    odd = pd.DataFrame(
        [{"city": "Atlantis", "state": None, "zip_code": "99999", "bed": None, "bath": 2.0, "house_size": None}],
        columns=FEATURES,
    )
    assert np.isfinite(model.predict(odd[FEATURES])).all()


@pytest.mark.parametrize("model_type", ["loglinear", "hgb", "lgbm_geo", "lgbm_local"])
def test_log_price_models_never_predict_a_negative_price(rows: pd.DataFrame, home, model_type: str) -> None:
    model, _ = fit(load_settings(), rows, rows.iloc[:0], model_type)
    extreme = rows[FEATURES].copy()
    extreme["house_size"] = extreme["house_size"] * 50  # far outside anything seen
    extreme["bed"] = 0.0
    assert (model.predict(extreme) > 0).all() and (model.predict(rows[FEATURES]) > 0).all()


@pytest.mark.parametrize("metric", ["mae", "rmse"])
def test_auto_keeps_the_candidate_with_the_lowest_validation_score(rows: pd.DataFrame, home, metric: str) -> None:
    """MLOPS_SELECT_METRIC (mae by default) decides; the chosen one's price range is calibrated."""
    settings = load_settings(model="auto", select_metric=metric)
    train = rows[rows["split"] == "train"]
    choice = choose_model(settings, train)
    assert set(choice.validation) == set(CANDIDATES)
    assert choice.model_type == min(CANDIDATES, key=lambda c: choice.validation[c][metric])
    assert choice.interval is not None and choice.interval.level == 0.8 and choice.interval.half_width > 0
    assert choose_model(settings, train) == choice, "the same rows and seed choose the same way"
    assert choose_model(settings, train.head(2 * MIN_TRAIN_ROWS - 1)).model_type == "linear"


def test_too_few_training_rows_is_a_clear_error(rows: pd.DataFrame, home) -> None:
    with pytest.raises(MlopsError, match=f"need at least {MIN_TRAIN_ROWS}"):
        fit(load_settings(), rows.head(5), rows.head(5), "linear")
    assert build_pipeline(10, "ridge").steps[-1][0] == "regressor"
