"""The calibrated price range: split conformal on validation errors, carried by the model itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import LinearRegression

from mlops_cli.pipeline.interval import ATTRIBUTE, Interval, attach, calibrate, coverage, interval_of


def test_the_half_width_is_the_conformal_rank_of_the_validation_errors() -> None:
    actual = np.arange(1, 20) * 1000.0 + 100_000
    predicted = np.full(19, 100_000.0)  # errors 1000 .. 19000
    found = calibrate(LinearRegression(), actual, predicted, level=0.8)
    # rank ceil((19 + 1) * 0.8) = 16: the 16th smallest error
    assert found == Interval(level=0.8, scale="price", half_width=16_000.0, rows=19)
    assert found.bounds(10_000.0) == (0.0, 26_000.0), "a price range never goes below zero"


def test_a_log_price_model_gets_a_relative_range() -> None:
    model = TransformedTargetRegressor(regressor=LinearRegression(), func=np.log, inverse_func=np.exp)
    actual = np.full(30, 200_000.0)
    predicted = actual * np.exp(np.linspace(-0.3, 0.3, 30))
    found = calibrate(model, actual, predicted)
    assert found.scale == "log"
    low, high = found.bounds(100_000.0)
    assert low * high == pytest.approx(100_000.0**2) and high / 100_000.0 == pytest.approx(math.exp(found.half_width))


def test_too_few_or_unusable_rows_calibrate_nothing() -> None:
    assert calibrate(LinearRegression(), [1.0] * 9, [1.0] * 9) is None
    assert calibrate(LinearRegression(), [math.nan] * 20 + [0.0] * 5, [1.0] * 25) is None


def test_the_range_travels_with_the_model_and_a_tampered_one_is_ignored() -> None:
    model = LinearRegression()
    assert interval_of(model) is None
    attach(model, Interval(level=0.8, scale="price", half_width=5.0, rows=40))
    assert interval_of(model) == Interval(level=0.8, scale="price", half_width=5.0, rows=40)
    for broken in ({"level": 2, "scale": "price", "half_width": 5, "rows": 1}, {"level": 0.8}, "x",
                   {"level": 0.8, "scale": "inches", "half_width": 5, "rows": 1}):  # fmt: skip
        setattr(model, ATTRIBUTE, broken)
        assert interval_of(model) is None


def test_coverage_is_the_share_inside_and_the_median_width() -> None:
    interval = Interval(level=0.8, scale="price", half_width=10.0, rows=40)
    assert coverage(interval, [100, 105, 130, 95], [100, 100, 100, 100]) == {
        "interval_coverage": 0.75,
        "interval_median_width": 20.0,
    }
