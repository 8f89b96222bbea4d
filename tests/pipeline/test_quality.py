"""Model candidates on real listings (the shared realtor file): `MLOPS_MODEL=auto` end to end."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import LISTING, serving_settings

pytestmark = pytest.mark.slow
REAL = "realtor_2022_pr_vi.csv"


def real_listings() -> Path:
    """The shared development file (never copied into the project): MLOPS_SHARED_DATA, else the
    workplace's shared/data beside the checkout."""
    here = Path(__file__).resolve()
    places = [Path(os.environ["MLOPS_SHARED_DATA"])] if os.environ.get("MLOPS_SHARED_DATA") else []
    places += [parent / "shared" / "data" for parent in here.parents]
    for place in places:
        if (place / REAL).is_file():
            return place / REAL
    pytest.skip(f"{REAL} is not on this machine (set MLOPS_SHARED_DATA)")


def test_auto_on_real_listings_beats_the_seed_recipe_and_is_served(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from mlflow import MlflowClient

    from mlops_cli.pipeline.fit import CANDIDATES, build_pipeline
    from mlops_cli.pipeline.train import run
    from mlops_cli.registry.client import alias_version, configure
    from mlops_cli.registry.models import show_version
    from mlops_cli.registry.scoring import load_model, regression_metrics
    from mlops_cli.schema import FEATURES, TARGET
    from mlops_cli.store.db import engine_for
    from mlops_cli.store.frames import read_table
    from mlops_cli.store.tables import clean_data
    from serving.app import create_app
    from serving.model_server import wait_until_loaded
    from ui.data import models_table

    settings = serving_settings(tmp_path / ".mlops", model="auto", data_source=f"csv:{real_listings()}")
    run(settings, reload_api=False)
    client: MlflowClient = configure(settings)
    champion = alias_version(client, settings, "champion")
    assert champion.tags["model_type"] in CANDIDATES
    assert {f"validation_rmse_{c}" for c in CANDIDATES} <= set(champion.tags)
    children = client.search_runs(
        [client.get_run(champion.run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{champion.run_id}'",
    )
    assert sorted(r.data.params["model_type"] for r in children) == sorted(CANDIDATES)
    assert all("validation_rmse" in r.data.metrics for r in children)

    # held out: the test rows of every batch, never used to fit or to choose
    rows = read_table(engine_for(settings), clean_data)
    train, test = rows[rows["split"] == "train"], rows[rows["split"] == "test"]
    served = load_model(settings, champion.version).predict(test[FEATURES])
    seed = build_pipeline(settings.max_categories).fit(train[FEATURES], train[TARGET]).predict(test[FEATURES])
    ours, theirs = regression_metrics(test[TARGET], served), regression_metrics(test[TARGET], seed)
    print(f"champion {champion.tags['model_type']}: MAE {ours['mae']:,.0f} vs seed {theirs['mae']:,.0f}")
    # the goal is 0.58x (issue 28); measured 0.61-0.62x on this file's 489 test rows, whose noise
    # alone moves a candidate by +-3 %: this guards what is reached
    assert ours["mae"] < 0.66 * theirs["mae"] and ours["rmse"] < theirs["rmse"]
    assert (served > 0).all()
    from mlops_cli.pipeline.interval import coverage, interval_of

    interval = interval_of(load_model(settings, champion.version))
    assert interval is not None and interval.level == 0.8
    covered = coverage(interval, test[TARGET].to_numpy(), served)["interval_coverage"]
    assert 0.74 <= covered <= 0.86, f"80 % range covers {covered:.1%} of the test listings"
    assert champion.tags["interval_coverage"] == f"{covered:.4f}"

    shown = show_version(settings, "champion")  # what `mlops models show champion` prints
    assert shown["model_type"] == champion.tags["model_type"] and set(shown["validation_rmse"]) == set(CANDIDATES)
    table = models_table(settings)  # the UI's table of versions
    assert set(table["model_type"]) <= set(CANDIDATES) and all("lgbm_geo" in v for v in table["validation_rmse"])

    app = create_app(settings)
    with TestClient(app) as api:
        assert wait_until_loaded(app.state.holder, 60) is not None, app.state.holder.last_error
        answer = api.post("/predict", json=LISTING).json()
        assert answer["model"]["version"] == int(champion.version) and answer["predictions"][0] > 0
        assert answer["unseen"] == [["city", "state", "zip_code"]], "Austin, Texas is not in this data"
        # every test listing answered, those without a city or a zip included
        listings = [{k: (None if v != v else v) for k, v in row.items()} for row in test[FEATURES].to_dict("records")]
        prices, bounds = [], []
        for start in range(0, len(listings), 1000):
            answered = api.post("/predict", json=listings[start : start + 1000])
            assert answered.status_code == 200, answered.text
            prices += answered.json()["predictions"]
            bounds += answered.json()["intervals"]
        assert len(prices) == len(test) and min(prices) > 0
        np.testing.assert_allclose(prices, served, rtol=1e-6)
        assert all(low < price < high for price, (low, high) in zip(prices, bounds, strict=True))
        local = test.dropna(subset=["city"]).iloc[0]
        here = {"city": local["city"], "state": local["state"], "zip_code": local["zip_code"]}  # no house_size
        assert api.post("/predict", json=here).json()["unseen"] == [[]]
