"""Fuzz the inference API's OpenAPI schema with schemathesis: no input may cause a 5xx, and every
answer is one the schema documents (all checks)."""

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


@schema.parametrize()
def test_every_answer_is_the_documented_one(case) -> None:
    """Every schemathesis check (status codes, content types, headers, response schemas, negative
    data rejected ...) on every endpoint: what the API sends is what its OpenAPI says."""
    case.call_and_validate(checks=all_checks())


def all_checks(*leaving_out: str) -> list:
    """Every check schemathesis has for OpenAPI (14 in 4.32), but the ones named."""
    import schemathesis.specs.openapi.checks  # noqa: F401 (registers them)
    from schemathesis.checks import CHECKS

    checks = [check for check in CHECKS.get_all() if check.__name__ not in leaving_out]
    assert len(checks) >= 10 - len(leaving_out), [c.__name__ for c in checks]
    return checks


@pytest.fixture(scope="module")
def client(app: FastAPI):
    from fastapi.testclient import TestClient

    return TestClient(app)


@schema.include(path="/predict", method="POST").parametrize()
def test_hostile_variants_of_every_generated_body_are_refused_with_a_4xx(case, app: FastAPI, client) -> None:
    """Each body schemathesis generates, sent the ways a careless client or an attacker would:
    as text/plain (a cross-site form post needs no preflight), padded past the size cap, and
    with a non-finite number: 415, 413 and 422, never a 5xx and never an echo of the body."""
    import json

    from hypothesis import assume

    assume(isinstance(case.body, dict | list))  # only JSON objects and arrays have these variants
    raw = json.dumps(case.body).encode()
    plain = client.post("/predict", content=raw, headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415, plain.text[:300]
    cap = app.state.holder.settings.api_max_body_bytes
    padded = client.post("/predict", content=raw + b" " * cap, headers={"Content-Type": "application/json"})
    assert padded.status_code == 413 and len(padded.content) < 500, padded.text[:300]
    listing = case.body if isinstance(case.body, dict) else {"city": "X", "state": "Y", "zip_code": "00601"}
    for number in ("NaN", "Infinity", "-1e999"):
        text = json.dumps({**listing, "house_size": 0}).replace('"house_size": 0', f'"house_size": {number}')
        answer = client.post("/predict", content=text, headers={"Content-Type": "application/json"})
        assert answer.status_code == 422, f"{number}: {answer.status_code} {answer.text[:300]}"
