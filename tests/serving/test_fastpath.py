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


@pytest.mark.parametrize(("model_type", "path"), [("hgb", "trees"), ("lgbm_local", "trees"), ("loglinear", "fast")])
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
    # one listing alone without city or zip: pandas once made that column all None, which the
    # pipeline priced unlike the same listing sent beside another (the fast path agreed with the latter)
    alone = [{"state": "Texas", "house_size": 1500}]
    assert served.predict(alone) == pytest.approx(through_pyfunc.predict(alone), rel=1e-6)
    assert served.predict(alone) == pytest.approx(through_pyfunc.predict([*alone, listings[0]])[:1], rel=1e-6)
    assert served.interval is not None and served.interval == through_pyfunc.interval  # either path
    if model_type == "hgb":  # native categorical splits: no exact TreeSHAP, and the API says so
        from fastapi.testclient import TestClient

        from serving.app import create_app
        from serving.model_server import wait_until_loaded

        assert served.explainer is None and "categorical" in (served.explain_reason or "")
        app = create_app(settings)
        with TestClient(app) as client:
            assert wait_until_loaded(app.state.holder, 60) is not None
            refused = client.post("/predict?explain=true", json=listings[0])
            assert refused.status_code == 409 and "categorical" in refused.json()["detail"]
            assert client.post("/predict", json=listings[0]).status_code == 200
    else:  # the fast path's explanations are the pipeline's own, without its pandas round trip
        from mlops_cli.pipeline.explain import explainer_for
        from mlops_cli.registry.scoring import load_model
        from serving.encoding import _frame, normalised_rows

        prices = served.predict(listings)
        fitted = load_model(settings, served.version)
        expected = [e.as_dict() for e in explainer_for(fitted).explain(_frame(normalised_rows(listings)), prices)]
        for price, answer, reference in zip(prices, served.explain(listings, prices), expected, strict=True):
            total = answer["base"] + sum(c["contribution"] for c in answer["contributions"])
            assert total == pytest.approx(np.log(price), rel=1e-9)
            assert answer["base"] == pytest.approx(reference["base"], rel=1e-9)
            terms = {c["feature"]: (c["value"], c["contribution"]) for c in answer["contributions"]}
            for c in reference["contributions"]:
                assert terms[c["feature"]][0] == c["value"]
                assert terms[c["feature"]][1] == pytest.approx(c["contribution"], rel=1e-6, abs=1e-9)
        if model_type == "lgbm_local":
            _explain_requests_share_the_batchers_thread(settings, served)


def _explain_requests_share_the_batchers_thread(settings, served) -> None:
    """One-listing ``?explain=true`` requests: their TreeSHAP runs in the batcher's thread, never
    on the event loop (there it held up every other request for ~0.2 ms), and requests in flight
    together each get their own listing's explanation."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from serving.app import create_app
    from serving.model_server import wait_until_loaded

    app = create_app(settings)
    with TestClient(app) as client:
        model = wait_until_loaded(app.state.holder, 60)
        treeshap = model.explainer._treeshap
        threads: set[str] = set()

        def recorded(dense: np.ndarray) -> np.ndarray:
            threads.add(threading.current_thread().name)
            return treeshap(dense)

        model.explainer._treeshap = recorded
        listings = [
            {"state": "Texas", "city": "Austin", "house_size": 900 + 150 * i, "bed": 1 + i % 4} for i in range(12)
        ]
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda listing: client.post("/predict?explain=true", json=listing), listings))
        assert threads == {"mlops-batcher"}
        for listing, answer in zip(listings, answers, strict=True):
            assert answer.status_code == 200, answer.text
            body = answer.json()
            price = body["predictions"][0]
            (expected,) = served.explain([listing], [price])
            (explained,) = body["explanations"]
            assert explained["base"] == pytest.approx(expected["base"], rel=1e-12)
            got = {c["feature"]: (c["value"], c["contribution"]) for c in explained["contributions"]}
            assert got == {
                c["feature"]: (c["value"], pytest.approx(c["contribution"], rel=1e-9, abs=1e-12))
                for c in expected["contributions"]
            }
