"""Step 3: retrain when enough rows are new, or when the data drifts from the champion's."""

import numpy as np
import pandas as pd
import pytest

from mlops_cli.config import load_settings
from mlops_cli.pipeline.decide import DriftReference, decide_retrain, drift_scores, psi
from mlops_cli.pipeline.ingest import normalised_rows
from mlops_cli.pipeline.records import decision_text
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


def fired(decision) -> dict[str, bool]:
    return {t.name: t.fired for t in decision.triggers}


def decided(settings, current: pd.DataFrame, reference: DriftReference | None, **counts):
    """decide_retrain on a round's rows, with the drift its validation would have recorded."""
    drift = drift_scores(reference, current) if reference is not None and len(current) else {}
    return decide_retrain(settings, rows=len(current), has_champion=reference is not None, drift=drift, **counts)


def test_first_batch_trains_because_there_is_no_champion(home) -> None:
    decision = decided(load_settings(), rows(100, 0), None, new_rows=100, total_rows=100)
    assert decision.retrain and decision.cause == "triggered" and decision.fired == ["first_model"]
    assert decision_text(decision.to_dict()) == "no champion yet"
    every = ["first_model", "new_rows", "drift", "new_categories", "degradation", "schema"]
    assert [t["name"] for t in decision.to_dict()["triggers"]] == every, "every rule is recorded, fired or not"


def test_too_few_rows_to_train_is_said_so_whatever_fired(home) -> None:
    decision = decided(load_settings(), rows(12, 0), None, new_rows=12, total_rows=12, train_rows=10)
    assert not decision.retrain and decision.cause == "too_few_rows" and decision.fired == ["first_model"]
    assert decision_text(decision.to_dict()) == "no champion yet, but too few rows to train (10 < 20)"


@pytest.mark.parametrize(
    ("degradation", "unseen", "expected"),
    [
        (0.25, None, ["degradation"]),
        (0.05, None, []),
        (None, 0.5, ["new_categories"]),
        (0.3, 0.3, ["new_categories", "degradation"]),
    ],
)
def test_a_degraded_champion_or_unseen_categories_trigger_retraining(
    home, degradation: float | None, unseen: float | None, expected: list[str]
) -> None:
    settings = load_settings(retrain_max_degradation=0.2, retrain_new_category_share=0.2, drift_trigger=False)
    decision = decided(
        settings,
        rows(100, 100),
        DriftReference.of(rows(100, 0)),
        new_rows=10,
        total_rows=200,
        degradation=degradation,
        new_category_share=unseen,
    )
    assert decision.fired == expected and decision.retrain is bool(expected)
    assert decision.cause == ("triggered" if expected else "no_trigger")
    by_name = {t.name: t for t in decision.triggers}
    assert (by_name["degradation"].value, by_name["degradation"].threshold) == (degradation, 0.2)


@pytest.mark.parametrize(("threshold", "retrain"), [(0.6, False), (0.5, True)])
def test_share_of_new_rows_since_the_last_retrain(home, threshold: float, retrain: bool) -> None:
    settings = load_settings(retrain_min_new_share=threshold, drift_trigger=False)
    decision = decided(settings, rows(100, 100), DriftReference.of(rows(100, 0)), new_rows=100, total_rows=200)
    assert (decision.new_rows, decision.total_rows, decision.new_share) == (100, 200, 0.5)
    assert decision.retrain is retrain


def test_drift_is_a_second_trigger(home) -> None:
    reference, drifted = DriftReference.of(rows(600, 0)), rows(60, 600, price_factor=3.0, state="Ohio")
    decision = decided(load_settings(drift_threshold=0.2), drifted, reference, new_rows=60, total_rows=660)
    assert decision.new_share < 0.6
    assert decision.retrain and decision.fired == ["drift"]
    assert decision.drift["state"] == 1.0 and decision.drift["price"] > 1
    assert decision_text(decision.to_dict()) == f"drift {decision.drift_score:.3f} (price) >= 0.2"
    off = decided(load_settings(drift_trigger=False), drifted, reference, new_rows=60, total_rows=660)
    assert not off.retrain and off.cause == "no_trigger" and fired(off)["drift"] is False
    assert "drift" in decision_text(off.to_dict())


def test_an_answer_with_no_clean_rows_never_trains(home) -> None:
    decision = decided(load_settings(), rows(0, 0), DriftReference.of(rows(100, 0)), new_rows=0, total_rows=100)
    assert not decision.retrain and decision.cause == "no_rows"
    assert decision_text(decision.to_dict()) == "no clean rows in this answer"


def test_a_stored_drift_reference_scores_exactly_like_the_rows_it_summarises(home) -> None:
    """Decisions read the champion's summary, not its rows: the summary, written and read back,
    must give the same scores as the rows themselves (to the last bit)."""
    rng = np.random.default_rng(3)
    reference = rows(2000, 0)
    reference["price"] = rng.lognormal(12, 0.6, len(reference))
    reference.loc[::7, "house_size"] = np.nan
    reference.loc[::11, "state"] = None
    current = rows(300, 5000, price_factor=1.4, state="Ohio")
    summary = DriftReference.of(reference)
    again = DriftReference.from_json(summary.to_json())
    assert again == summary and len(summary.to_json()) < 2000
    assert psi(reference["price"].to_numpy(float), current["price"].to_numpy(float)) == pytest.approx(
        decided(load_settings(), current, again, new_rows=1, total_rows=9).drift["price"],
        abs=5e-5,
    )
    both = [decided(load_settings(), current, r, new_rows=300, total_rows=2300) for r in (summary, again)]
    assert both[0] == both[1] and both[0].drift["state"] > 0.5


def test_validating_reads_this_rounds_rows_only_and_deciding_reads_no_rows(home) -> None:
    """Per-batch work follows the batch: with a champion in place, validation reads the new
    round's rows and the champion's stored summary, never the rows the champion was trained on;
    the decision then reads no listing at all, only the stored report and the round counts."""
    from mlops_cli.pipeline.engine import advance, decide, fetch, open_pipeline, process_round, validate
    from mlops_cli.store.rounds import get_round
    from tests.conftest import executed

    pipe = open_pipeline(load_settings(generator_batches=2, generator_batch_rows=300), reload_api=False)
    process_round(pipe, fetch(pipe).round_id)
    round_id = fetch(pipe).round_id
    advance(pipe, round_id, "cleaned")
    with executed(pipe.engine) as statements:
        validate(pipe, round_id)
    reads = [s for s in statements if s.startswith("SELECT") and "FROM clean_data" in s]
    assert reads and all("clean_data.round = " in s for s in reads), reads
    assert get_round(pipe.engine, round_id)["drift_score"] is not None
    with executed(pipe.engine) as statements:
        decide(pipe, round_id)
    assert not [s for s in statements if "FROM clean_data" in s or "FROM raw_data" in s], statements
    r = get_round(pipe.engine, round_id)
    assert r["state"] == "decided" and r["decision"]["triggers"][2]["value"] == r["drift_score"]
