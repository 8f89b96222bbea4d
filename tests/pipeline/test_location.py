"""Location features: zip geography from the shipped table, area prices from training rows only."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_cli.pipeline.location import GEO, OUTPUTS, PRICES, LocationFeatures, county_name, zip_point

DATA = Path(__file__).parent / "data"


def frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["state", "city", "zip_code", "house_size"])


@pytest.fixture
def listings() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    places = [("Texas", "Austin", "78701", 13.2), ("Texas", "Austin", "78702", 12.8)]
    places += [("Texas", "Dallas", "75201", 12.5)]
    places += [("Puerto Rico", "San Juan", "00901", 12.0), ("Puerto Rico", "Adjuntas", "00601", 11.3)]
    rows, prices = [], []
    for i in range(200):
        state, city, zip_code, level = places[i % len(places)]
        rows.append((state, city, zip_code, float(rng.uniform(800, 3000))))
        prices.append(level + rng.normal(0, 0.1))
    return frame(rows), np.array(prices)


def column(name: str) -> int:
    return OUTPUTS.index(name)


def test_a_zip_is_placed_from_the_table_that_ships_with_the_package() -> None:
    austin = zip_point("78701")
    assert austin is not None and abs(austin[0] - 30.27) < 0.1 and abs(austin[1] + 97.74) < 0.1
    assert zip_point("00901") is not None  # Puerto Rico is in it (the shared file's listings)
    assert zip_point("abc") is None and zip_point("99999") is None


def test_training_rows_never_see_their_own_price(listings) -> None:
    """Out of fold: a row's area prices come from the other folds only, as TargetEncoder does."""
    X, y = listings
    first = LocationFeatures(seed=3).fit_transform(X, y)
    changed = y.copy()
    changed[7] += 5.0  # a wildly different price for row 7 only
    second = LocationFeatures(seed=3).fit_transform(X, changed)
    prices = [column(n) for n in PRICES]
    np.testing.assert_array_equal(first[7, prices], second[7, prices])
    assert not np.array_equal(first[:, prices], second[:, prices]), "row 7's price reaches the other rows"
    geo = [column(n) for n in GEO]
    np.testing.assert_array_equal(first[:, geo], second[:, geo])  # geography knows no price


def test_serving_one_row_gives_what_transform_gives(listings) -> None:
    X, y = listings
    fitted = LocationFeatures().fit(X, y)
    asked = frame(
        [
            ("Texas", "Austin", "78701", 1000.0),
            ("Texas", "Austin", "78799", None),  # a zip training never saw: the city's prices
            ("Texas", None, None, None),  # only the state
            ("Atlantis", "Nowhere", None, None),  # nothing known: the overall values
            ("Texas", "Austin", "10001", None),  # unseen zip the table knows: its own position
        ]
    )
    table = fitted.transform(asked)
    for i, row in enumerate(asked.itertuples(index=False)):
        assert fitted.row(row.state, row.city, row.zip_code) == pytest.approx(list(table[i]), nan_ok=True)
    area = column("area_log_price")
    austin_city = table[1, column("city_log_price")]
    assert table[1, area] == austin_city and table[1, column("zip_listings")] == 0
    assert table[2, area] == table[2, column("state_log_price")] and table[2, column("city_listings")] == 0
    assert 12.0 < table[0, area] < 13.3  # the zip's mean, shrunk a little toward its city
    lat, lon = column("latitude"), column("longitude")
    # Manhattan, from the table, though no listing was there
    assert abs(table[4, lat] - 40.75) < 0.1 and abs(table[4, lon] + 73.99) < 0.1
    assert 30 < table[2, lat] < 33 and table[3, lat] != table[3, lat]  # Texas' training zips; unknown: NaN
    assert table[0, column("zip_number")] == 78701.0 and np.isnan(table[2, column("zip_number")])


def test_a_rare_zip_is_shrunk_toward_its_city() -> None:
    rows = [("Texas", "Austin", "78701", 1000.0)] * 40 + [("Texas", "Austin", "78702", 1000.0)]
    prices = np.array([12.0] * 40 + [14.0])
    fitted = LocationFeatures(smoothing=20).fit(frame(rows), prices)
    rare = fitted.row("Texas", "Austin", "78702")[column("area_log_price")]
    assert 12.0 < rare < 13.0  # one listing at 14 is worth little against the city's 41


def test_geography_alone_needs_no_price() -> None:
    X = frame([("Texas", "Austin", "78701", 1000.0)] * 3)
    geo = LocationFeatures(parts=("geo",)).fit(X)
    assert list(geo.get_feature_names_out()) == GEO and geo.transform(X).shape == (3, len(GEO))
    with pytest.raises(ValueError, match="parts"):
        LocationFeatures(parts=("weather",)).fit(X)


def test_a_zip_names_its_county_from_the_same_table(listings) -> None:
    """The county of the zip (the issue's zip-level geography): a number the trees can split on,
    one per county of the shipped table, shown by name; a listing without a known zip gets the
    county its city's training zips are in."""
    X, y = listings
    fitted = LocationFeatures(parts=("geo",)).fit(X, y)
    asked = frame(
        [
            ("Texas", "Austin", "78701", None),
            ("Texas", "Austin", "78702", None),  # the same county
            ("Texas", "Dallas", "75201", None),
            ("Texas", "Austin", None, None),  # no zip: Austin's training zips are all in Travis
            ("Texas", None, None, None),  # a state has many counties: none
            ("Virgin Islands", "Frederiksted", "00840", None),  # the table gives this zip no county
            ("Texas", "Austin", "99999", None),  # no such zip: the city's county
        ]
    )
    county = fitted.transform(asked)[:, GEO.index("county")]
    assert county_name(county[0]) == "Travis County, TX" and county[1] == county[0] == county[3] == county[6]
    assert county_name(county[2]) == "Dallas County, TX"
    assert np.isnan(county[4]) and np.isnan(county[5]) and county_name(county[4]) is None
    served = [fitted.row(r.state, r.city, r.zip_code)[GEO.index("county")] for r in asked.itertuples(index=False)]
    assert served == pytest.approx(list(county), nan_ok=True)
    assert county_name(float("nan")) is None and county_name(1e9) is None


def test_a_model_fitted_before_counties_answers_the_columns_its_trees_were_fitted_on() -> None:
    """A champion registered by the previous release (pickled before ``county`` was a feature)
    keeps serving after an upgrade: its rows have the columns it was fitted with, same values."""
    before = json.loads((DATA / "location_before_county.json").read_text())
    old = pickle.loads((DATA / "location_before_county.pkl").read_bytes())
    assert list(old.get_feature_names_out()) == before["outputs"] and "county" not in before["outputs"]
    asked = frame([(*place, None) for place in before["asked"]])
    expected = np.array(before["features"], dtype=float)
    np.testing.assert_array_equal(old.transform(asked), expected)
    for i, place in enumerate(before["asked"]):
        np.testing.assert_array_equal(old.row(*place), expected[i])


def test_a_city_without_a_zip_is_placed_at_its_listings_mean_position() -> None:
    """Each training listing counts once (the fit groups identical places, weighted by their rows)."""
    X = frame([("Texas", "Austin", "78701", 1000.0)] * 3 + [("Texas", "Austin", "75201", 1000.0)])
    fitted = LocationFeatures(parts=("geo",)).fit(X)
    austin, dallas = zip_point("78701"), zip_point("75201")
    lat, lon, _, county = fitted.row("Texas", "Austin", None)
    assert [lat, lon] == pytest.approx([(3 * a + d) / 4 for a, d in zip(austin, dallas, strict=True)])
    assert county_name(county) == "Travis County, TX"  # three of its four listings


@pytest.mark.parametrize("first", ["Austin", "Dallas"])
def test_a_zip_named_by_two_cities_alike_belongs_to_the_one_named_first(first: str) -> None:
    """A zip's wider area is the city most of its rows name; on a tie the one its rows name first
    (the same answer on every fit of the same rows)."""
    second = "Dallas" if first == "Austin" else "Austin"
    level = {"Austin": 12.0, "Dallas": 14.0}
    rows = [("Texas", first, "78799", 1000.0), ("Texas", second, "78799", 1000.0)]
    rows += [("Texas", "Austin", "78701", 1000.0)] * 40 + [("Texas", "Dallas", "75201", 1000.0)] * 40
    prices = np.array([13.0, 13.0] + [level["Austin"]] * 40 + [level["Dallas"]] * 40)
    fitted = LocationFeatures(parts=("prices",), smoothing=20).fit(frame(rows), prices)
    shared = fitted.row("Texas", None, "78799")[PRICES.index("area_log_price")]
    city = fitted.row("Texas", first, None)[PRICES.index("area_log_price")]
    assert abs(shared - city) < abs(shared - fitted.row("Texas", second, None)[PRICES.index("area_log_price")])
