"""Step 3: retrain when enough rows are new, or when the data drifts from the champion's."""

import numpy as np
import pandas as pd
import pytest

from mlops_cli.config import load_settings
from mlops_cli.pipeline.decide import decide_retrain, psi
from mlops_cli.pipeline.ingest import normalised_rows
from tests.conftest import ROW


def rows(n: int, start: int, price_factor: float = 1.0, state: str = "Texas") -> pd.DataFrame:
    listings = [
        {**ROW, "state": state, "price": (200_000 + 997 * i) * price_factor, "house_size": 800 + i}
        for i in range(start, start + n)
    ]
    return normalised_rows(listings, "test")


def test_psi_is_zero_for_the_same_distribution_and_grows_with_shift() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 5000)
    assert psi(ref, rng.normal(0, 1, 5000)) < 0.02
    assert psi(ref, rng.normal(1, 1, 5000)) > 0.5


def test_first_batch_trains_because_there_is_no_champion(home) -> None:
    decision = decide_retrain(load_settings(), current=rows(100, 0), reference=None, new_rows=100, total_rows=100)
    assert decision.retrain and decision.reason == "no champion yet"


@pytest.mark.parametrize(("threshold", "retrain"), [(0.6, False), (0.5, True)])
def test_share_of_new_rows_since_the_last_retrain(home, threshold: float, retrain: bool) -> None:
    settings = load_settings(retrain_min_new_share=threshold, drift_trigger=False)
    decision = decide_retrain(settings, current=rows(100, 100), reference=rows(100, 0), new_rows=100, total_rows=200)
    assert (decision.new_rows, decision.total_rows, decision.new_share) == (100, 200, 0.5)
    assert decision.retrain is retrain


def test_drift_is_a_second_trigger(home) -> None:
    reference, drifted = rows(600, 0), rows(60, 600, price_factor=3.0, state="Ohio")
    decision = decide_retrain(
        load_settings(drift_threshold=0.2), current=drifted, reference=reference, new_rows=60, total_rows=660
    )
    assert decision.new_share < 0.6
    assert decision.retrain and decision.reason.startswith("drift")
    assert decision.drift["state_mix"] == 1.0 and decision.drift["price_psi"] > 1
    off = decide_retrain(
        load_settings(drift_trigger=False), current=drifted, reference=reference, new_rows=60, total_rows=660
    )
    assert not off.retrain and "drift" in off.reason


def test_an_answer_with_no_clean_rows_never_trains(home) -> None:
    decision = decide_retrain(load_settings(), current=rows(0, 0), reference=rows(100, 0), new_rows=0, total_rows=100)
    assert not decision.retrain and decision.reason == "no clean rows in this answer"
