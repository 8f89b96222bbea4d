"""Scores of registered versions: the four metrics, a verified model loaded once, its categories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_cli.pipeline.fit import build_pipeline
from mlops_cli.registry import scoring
from mlops_cli.registry.scoring import estimators, known_categories, metrics_on, regression_metrics
from mlops_cli.schema import FEATURES, TARGET
from mlops_cli.store import listings
from mlops_cli.store.db import engine_for
from tests.conftest import good_rows, serving_settings


def test_the_four_metrics() -> None:
    scores = regression_metrics(np.array([100.0, 200.0, 300.0]), np.array([110.0, 190.0, 330.0]))
    assert scores["rmse"] == pytest.approx(np.sqrt((100 + 100 + 900) / 3))
    assert scores["mae"] == pytest.approx(50 / 3) and scores["mape"] == pytest.approx((0.1 + 0.05 + 0.1) / 3)
    assert scores["r2"] == pytest.approx(1 - 1100 / 20_000)
    assert regression_metrics(np.array([5.0, 5.0]), np.array([4.0, 6.0]))["r2"] == 0.0, "no variance: no R²"


def test_the_categories_a_fitted_model_knows_and_its_nested_estimators() -> None:
    rows = pd.DataFrame(good_rows(40))
    model = build_pipeline(20, "loglinear").fit(rows[FEATURES], rows[TARGET])
    known = known_categories(model)
    assert set(known["state"]) == set(rows["state"]) and set(known["city"]) == set(rows["city"])
    assert model in estimators(model) and len(estimators(model)) > 3


def test_a_version_is_verified_and_loaded_once_then_scored(registry_home: Path, monkeypatch) -> None:  # noqa: ANN001
    settings = serving_settings(registry_home)
    test = listings.test_rows(engine_for(settings))
    scores = metrics_on(settings, "champion", test)
    model = scoring.load_model(settings, "champion")
    assert scores == regression_metrics(test[TARGET].to_numpy(), model.predict(test[FEATURES]))
    monkeypatch.setattr("mlops_cli.registry.signing.verified_model", lambda *a, **k: pytest.fail("loaded again"))
    assert scoring.load_model(settings, "champion") is model
