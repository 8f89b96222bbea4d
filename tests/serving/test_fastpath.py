"""The fast path: a linear pipeline folded into lookups equals the model; anything else refuses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_cli.config import load_settings
from mlops_cli.pipeline.clean import clean_rows
from mlops_cli.pipeline.fit import fit
from mlops_cli.pipeline.ingest import normalised_rows
from mlops_cli.pipeline.sources import GeneratorSource
from mlops_cli.schema import FEATURES
from serving.encoding import NotFoldable
from serving.fastpath import fold


@pytest.fixture
def rows(home) -> pd.DataFrame:
    raw = normalised_rows(GeneratorSource(load_settings(generator_batch_rows=600)).rows(0), "test")
    return clean_rows(raw, np.array([], dtype=np.int64), test_size=0.15, seed=1).kept


@pytest.mark.parametrize("model_type", ["linear", "ridge", "loglinear"])
def test_a_folded_linear_model_predicts_what_the_model_predicts(rows: pd.DataFrame, home, model_type: str) -> None:
    """loglinear folds in log space (log1p of the numbers, contributions summed, then exp)."""
    model, _ = fit(load_settings(), rows, rows.iloc[:0], model_type)
    folded = fold(model)
    assert folded.checked_rows > 0
    listings = [{k: v for k, v in row.items() if v == v} for row in rows[FEATURES].head(50).to_dict("records")]
    listings += [{"city": "Atlantis", "state": "texas", "zip_code": 601, "house_size": 900.0}]  # unseen, unnormalised
    frame = pd.DataFrame(listings, columns=FEATURES)
    frame["zip_code"] = frame["zip_code"].map(lambda z: f"{int(z):05d}" if isinstance(z, int) else z)
    frame["state"] = frame["state"].str.title()
    np.testing.assert_allclose(folded.predict(listings), model.predict(frame), rtol=1e-9)


def test_a_tree_model_does_not_fold(rows: pd.DataFrame) -> None:
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.pipeline import Pipeline

    from mlops_cli.pipeline.fit import build_pipeline

    linear = build_pipeline(20, "linear")
    trees = Pipeline([("features", linear.named_steps["features"]), ("regressor", RandomForestRegressor(5))])
    trees.fit(rows[FEATURES], rows["price"])
    with pytest.raises(NotFoldable):
        fold(trees)


def test_compiled_trees_predict_what_the_model_predicts(rows: pd.DataFrame) -> None:
    from serving.trees import compile_trees

    model, _ = fit(load_settings(), rows, rows.iloc[:0], "hgb")
    compiled = compile_trees(model)
    assert compiled.checked_rows > 0  # random mixed rows, unknown categories and missing values included
    listings = [{k: v for k, v in row.items() if v == v} for row in rows[FEATURES].head(50).to_dict("records")]
    listings += [
        {"city": "Atlantis", "state": "texas", "zip_code": 601},  # unseen city, unnormalised state/zip, no numbers
        {"city": None, "state": "Texas", "zip_code": "75003", "house_size": 1500.0},
    ]
    frame = pd.DataFrame(listings, columns=FEATURES)
    frame["zip_code"] = frame["zip_code"].map(lambda z: f"{int(z):05d}" if isinstance(z, int) else z)
    frame["state"] = frame["state"].str.title()
    np.testing.assert_allclose(compiled.predict(listings), model.predict(frame), rtol=1e-6)
    prices, unseen = compiled.predict_marked(listings[-2:])
    known_zips = set(rows["zip_code"].astype(str))
    assert unseen == [["city", *([] if "00601" in known_zips else ["zip_code"])], []] and all(p > 0 for p in prices)


def test_trees_that_are_not_ours_are_not_compiled(rows: pd.DataFrame) -> None:
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.pipeline import Pipeline

    from mlops_cli.pipeline.fit import build_pipeline
    from serving.trees import compile_trees

    linear = build_pipeline(20, "linear")
    forest = Pipeline([("features", linear.named_steps["features"]), ("regressor", RandomForestRegressor(5))])
    forest.fit(rows[FEATURES], rows["price"])
    with pytest.raises(NotFoldable, match="not HistGradientBoosting"):
        compile_trees(forest)


@pytest.mark.parametrize(("model_type", "path"), [("hgb", "trees"), ("loglinear", "fast")])
def test_the_api_serves_a_tree_or_loglinear_champion_on_a_fast_path(home, model_type: str, path: str) -> None:
    from mlops_cli.pipeline.train import run
    from serving.model_server import load_registered
    from tests.conftest import serving_settings

    settings = serving_settings(home, model=model_type, generator_batches=2)
    run(settings, reload_api=False)
    served = load_registered(settings)
    assert served.kind == path and served.info()["path"] == path and served.fallback_reason is None
    through_pyfunc = load_registered(settings, allow_fast=False)
    listings = [
        {"city": "Austin", "state": "Texas", "zip_code": "75003", "house_size": 1800, "bed": 3, "bath": 2},
        {"city": "Atlantis", "state": "Texas", "zip_code": "75003"},
    ]
    np.testing.assert_allclose(served.predict(listings), through_pyfunc.predict(listings), rtol=1e-6)
    assert served.predict_marked(listings)[1] == [[], ["city"]]
