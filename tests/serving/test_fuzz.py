"""Fuzz the inference API's OpenAPI schema with schemathesis: no input may cause a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI

from serving.app import create_app
from serving.model_server import wait_until_loaded
from tests.conftest import serving_settings


@pytest.fixture(scope="module")
def app(registry_home: Path) -> Iterator[FastAPI]:
    from fastapi.testclient import TestClient

    application = create_app(serving_settings(registry_home))
    with TestClient(application):  # runs the lifespan: the champion loads
        assert wait_until_loaded(application.state.holder, 60) is not None
        yield application


@pytest.fixture(scope="module")
def api_schema(app: FastAPI):
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_no_input_causes_a_server_error(case) -> None:
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
