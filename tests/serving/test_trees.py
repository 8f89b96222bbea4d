"""Tree ensembles compiled for treelite: the same prices as the model, and only ours compiled."""

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


@pytest.fixture
def rows(home) -> pd.DataFrame:
    raw = normalised_rows(GeneratorSource(load_settings(generator_batch_rows=600)).rows(0), "test")
    return clean_rows(raw, np.array([], dtype=np.int64), test_size=0.15, seed=1).kept


@pytest.mark.parametrize("model_type", ["hgb", "lgbm_geo", "lgbm_local"])
def test_compiled_trees_predict_what_the_model_predicts(rows: pd.DataFrame, model_type: str) -> None:
    """scikit-learn's trees and LightGBM's, the latter fed the location features by lookups."""
    from serving.trees import compile_trees

    model, _ = fit(load_settings(), rows, rows.iloc[:0], model_type)
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
    with pytest.raises(NotFoldable, match="not HistGradientBoosting or LightGBM"):
        compile_trees(forest)
