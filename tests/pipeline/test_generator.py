import pandas as pd

from mlops_cli.pipeline.generator import STATES, GeneratorConfig, generate_batch, locations
from mlops_cli.schema import COLUMNS, normalise


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    a = generate_batch(3, GeneratorConfig(seed=1))
    b = generate_batch(3, GeneratorConfig(seed=1))
    c = generate_batch(3, GeneratorConfig(seed=2))
    pd.testing.assert_frame_equal(a, b)
    assert not a["price"].equals(c["price"])


def test_rows_follow_the_schema_and_the_location_hierarchy() -> None:
    frame = normalise(generate_batch(0, GeneratorConfig()))
    assert list(frame.columns) == COLUMNS
    known = {(state.title(), city.title(), zip_code) for state, city, zip_code, _ in locations()}
    located = frame.dropna(subset=["city"])
    assert set(zip(located["state"], located["city"], located["zip_code"], strict=True)) <= known
    assert set(frame["state"]) <= {s.title() for s in STATES}


def test_prices_depend_on_size_and_location() -> None:
    frame = normalise(pd.concat([generate_batch(b, GeneratorConfig()) for b in range(3)]))
    valid = frame[(frame["price"] > 0) & frame["house_size"].between(400, 9000)]
    assert valid["price"].corr(valid["house_size"]) > 0.3
    by_state = valid.groupby("state")["price"].median()
    assert by_state["California"] > 2 * by_state["Ohio"]


def test_batches_carry_dirt_missing_values_outliers_and_duplicates() -> None:
    raw = generate_batch(0, GeneratorConfig(batch_rows=3000))
    assert raw["bath"].isna().any() and raw["house_size"].isna().any()
    assert (raw["price"] <= 0).any()
    assert raw.duplicated().any()
    assert raw["zip_code"].map(lambda z: isinstance(z, float)).any(), "some ids arrive as floats"


def test_drift_moves_price_level_and_state_mix() -> None:
    config = GeneratorConfig(batches=10, batch_rows=3000, price_drift=0.1, state_drift=0.8)
    first, last = normalise(generate_batch(0, config)), normalise(generate_batch(9, config))
    still = GeneratorConfig(batches=10, batch_rows=3000, price_drift=0.0, state_drift=0.0)
    flat = normalise(generate_batch(9, still))

    def per_sqft(frame: pd.DataFrame) -> float:
        texas = frame[frame["state"] == "Texas"]
        return (texas["price"] / texas["house_size"]).median()

    def share(frame: pd.DataFrame, state: str) -> float:
        return (frame["state"] == state).mean()

    assert per_sqft(last) > 1.8 * per_sqft(first)
    assert share(last, "Puerto Rico") > 2 * share(flat, "Puerto Rico")
