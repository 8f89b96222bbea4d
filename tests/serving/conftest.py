"""Serving tests use the shared registry fixtures of tests/conftest.py, and these."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mlops_cli.registry.models import alias_state
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
