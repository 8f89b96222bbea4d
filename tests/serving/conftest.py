"""Serving tests use the shared registry fixtures of tests/conftest.py, and these."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mlops_cli.registry.models import alias_state
from mlops_cli.store.db import engine_for
from serving.app import create_app
from serving.model_server import wait_until_loaded
from tests.conftest import serving_settings


@pytest.fixture
def settings(registry_home: Path):
    return serving_settings(registry_home, api_max_batch=50)


@pytest.fixture
def client(settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app) as test_client:
        assert wait_until_loaded(app.state.holder, 60) is not None, app.state.holder.last_error
        yield test_client


def champion(settings) -> int:
    return alias_state(settings).champion


def metric(app, name: str, **labels: str) -> float:
    value = app.state.metrics.registry.get_sample_value(name, labels or None)
    return value or 0.0


def training_listings(registry_home: Path, n: int) -> list[dict]:
    import math

    from mlops_cli.schema import listing_problem
    from mlops_cli.store.frames import read_table
    from mlops_cli.store.tables import clean_data

    rows = read_table(engine_for(serving_settings(registry_home)), clean_data, clean_data.c.split == "train")
    fields = ["city", "state", "zip_code", "house_size", "bed", "bath", "acre_lot"]
    listings = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in rows.sample(frac=1.0, random_state=7)[fields].to_dict("records")
    ]
    return [row for row in listings if listing_problem(row) is None][:n]  # a few training rows have no city
