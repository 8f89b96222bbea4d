from pathlib import Path

import numpy as np
import pytest

from mlops_cli.clean import clean_and_split
from mlops_cli.decide import decide_retrain, psi
from mlops_cli.ingest import ingest_batch
from mlops_cli.settings import load_settings
from mlops_cli.storage import batch_log_rows, engine_for, upsert_batch_log
from tests.test_ingest import ROW, FixedSource


def rows(n: int, start: int, price_factor: float = 1.0, state: str = "Texas") -> list[dict]:
    return [
        {**ROW, "state": state, "price": (200_000 + 997 * i) * price_factor, "house_size": 800 + i}
        for i in range(start, start + n)
    ]


def load(settings, batches: dict[int, list[dict]]):  # noqa: ANN001, ANN201
    engine = engine_for(settings)
    source = FixedSource(batches)
    for number in sorted(batches):
        ingest_batch(settings, source, number, engine)
        clean_and_split(settings, number, engine)
    return engine


def test_psi_is_zero_for_the_same_distribution_and_grows_with_shift() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 5000)
    assert psi(ref, rng.normal(0, 1, 5000)) < 0.02
    assert psi(ref, rng.normal(1, 1, 5000)) > 0.5


def test_first_batch_trains_because_there_is_no_champion(home: Path) -> None:
    settings = load_settings()
    engine = load(settings, {0: rows(100, 0)})
    decision = decide_retrain(settings, 0, engine, champion_batches=None)
    assert decision.retrain and decision.reason == "no champion yet"
    assert decision.new_rows == decision.total_rows == 100


@pytest.mark.parametrize(("threshold", "retrain"), [(0.6, False), (0.5, True)])
def test_share_of_new_rows_since_the_last_trained_model(home: Path, threshold: float, retrain: bool) -> None:
    settings = load_settings(retrain_min_new_share=threshold, drift_trigger=False)
    engine = load(settings, {0: rows(100, 0), 1: rows(100, 100)})
    upsert_batch_log(engine, 0, retrained=True)
    decision = decide_retrain(settings, 1, engine, champion_batches=[0])
    assert (decision.new_rows, decision.total_rows, decision.new_share) == (100, 200, 0.5)
    assert decision.retrain is retrain
    logged = batch_log_rows(engine)[1]
    assert logged["retrained"] is retrain and logged["new_share"] == 0.5 and logged["reason"] == decision.reason


def test_drift_is_a_second_trigger(home: Path) -> None:
    batches = {0: rows(300, 0), 1: rows(300, 300), 2: rows(60, 600, price_factor=3.0, state="Ohio")}
    settings = load_settings(drift_threshold=0.2)
    engine = load(settings, batches)
    upsert_batch_log(engine, 1, retrained=True)
    decision = decide_retrain(settings, 2, engine, champion_batches=[0, 1])
    assert decision.new_share < 0.6
    assert decision.retrain and decision.reason.startswith("drift")
    assert decision.drift["state_mix"] == 1.0 and decision.drift["price_psi"] > 1
    off = decide_retrain(load_settings(drift_trigger=False), 2, engine, champion_batches=[0, 1])
    assert not off.retrain and "drift" in off.reason


def test_a_batch_with_no_clean_rows_never_trains(home: Path) -> None:
    settings = load_settings()
    engine = load(settings, {0: rows(100, 0), 1: [{**ROW, "price": 0}]})
    decision = decide_retrain(settings, 1, engine, champion_batches=[0])
    assert not decision.retrain and decision.reason == "no clean rows in this batch"
