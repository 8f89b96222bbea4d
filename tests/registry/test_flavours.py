"""A logged model loaded from its verified files: the estimator itself, or MLflow's pyfunc around it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_cli.registry.client import connect, resolve_version
from mlops_cli.registry.flavours import load_estimator, load_pyfunc
from mlops_cli.registry.signing import verified_model
from mlops_cli.schema import FEATURES
from mlops_cli.store import listings
from mlops_cli.store.db import engine_for
from tests.conftest import serving_settings


def test_both_flavours_price_the_same_rows_the_same(registry_home: Path, tmp_path: Path) -> None:
    settings = serving_settings(registry_home)
    rows = listings.test_rows(engine_for(settings)).head(20)
    with verified_model(settings, resolve_version(connect(settings), settings, "champion")) as folder:
        estimator, pyfunc = load_estimator(folder), load_pyfunc(folder)
    assert hasattr(estimator, "predict") and estimator.predict(rows[FEATURES]).tolist() == pytest.approx(
        pyfunc.predict(rows[FEATURES]).tolist()
    )
    with pytest.raises(Exception):  # noqa: B017, PT011 — MLflow's own error for a folder with no model
        load_estimator(tmp_path)
