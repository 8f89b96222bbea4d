"""The served model: loaded on its fastest path or through pyfunc, following the champion alias."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from mlops_cli.registry.models import list_versions
from mlops_cli.schema import FEATURES
from serving.app import create_app
from serving.model_server import wait_until_loaded
from tests.conftest import LISTING, serving_settings
from tests.serving.conftest import champion


def test_a_model_that_cannot_be_folded_is_served_through_pyfunc(settings, tmp_path: Path) -> None:
    """A nearest-neighbour model is not additive: the fast path refuses it and /model says so."""
    import mlflow
    from sklearn.neighbors import KNeighborsRegressor

    from mlops_cli.pipeline.fit import build_pipeline
    from mlops_cli.registry.client import configure
    from mlops_cli.registry.signing import sign_version
    from mlops_cli.store.db import engine_for
    from mlops_cli.store.frames import read_table
    from mlops_cli.store.tables import clean_data

    pyfunc_settings = serving_settings(
        settings.home.parent / "other" / ".mlops",
        api_max_batch=50,
        mlflow_tracking_uri=None,
        model_name="house_prices_forest",
    )
    data = read_table(engine_for(settings), clean_data)
    pipeline = build_pipeline(60)
    pipeline.steps[-1] = ("regressor", KNeighborsRegressor(n_neighbors=5))
    pipeline.fit(data[FEATURES], data["price"])
    client = configure(pyfunc_settings)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            registered_model_name="house_prices_forest",
            input_example=data[FEATURES].head(2),
            skops_trusted_types=["numpy.dtype", "scipy.sparse._csr.csr_matrix"],
        )
    version = int(info.registered_model_version)
    sign_version(client, pyfunc_settings, version, info.run_id)  # as if our training had made it
    client.set_registered_model_alias("house_prices_forest", "champion", str(version))
    app = create_app(pyfunc_settings)
    with TestClient(app) as api:
        assert wait_until_loaded(app.state.holder, 60) is not None, app.state.holder.last_error
        model = api.get("/model").json()
        assert model["path"] == "pyfunc" and "differ" in model["fallback_reason"]
        rows = data.dropna(subset=["house_size", "city"])[FEATURES].head(20)
        listings = [{k: v for k, v in r.items() if v == v} for r in rows.to_dict(orient="records")]
        served = api.post("/predict", json=listings).json()["predictions"]
    np.testing.assert_allclose(served, pipeline.predict(rows), rtol=1e-6)


def test_the_server_follows_the_alias_without_load_model_calls(registry_home: Path) -> None:
    from mlops_cli.pipeline.promote import promote_if_better

    settings = serving_settings(registry_home, api_watch_interval=0.2)
    first = champion(settings)
    other = next(v["version"] for v in list_versions(settings) if v["version"] != first)
    app = create_app(settings)
    with TestClient(app) as client:
        assert wait_until_loaded(app.state.holder, 60).version == first
        promote_if_better(settings, other, force=True, who="test")
        try:
            deadline = time.monotonic() + 30
            while client.post("/predict", json=LISTING).json()["model"]["version"] != other:
                assert time.monotonic() < deadline, "the watcher did not pick up the new champion"
                time.sleep(0.1)
        finally:
            promote_if_better(settings, first, force=True, who="test")
