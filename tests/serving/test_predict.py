"""POST /predict as served by its bare ASGI endpoint: the same answers and refusals as a FastAPI
route, the same OpenAPI page, without FastAPI's per-request endpoint machinery."""

from __future__ import annotations

import json

import fastapi.routing
import pytest
from fastapi.testclient import TestClient

from tests.conftest import LISTING


def test_predict_skips_fastapis_dependency_solving(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """FastAPI's endpoint machinery cost a third of a one-listing answer (bench/serve.py)."""
    solved = []
    real = fastapi.routing.solve_dependencies

    async def counting(*args, **kwargs):
        solved.append(kwargs.get("request") or args[0])
        return await real(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    assert client.post("/predict", json=LISTING).status_code == 200
    assert client.post("/predict", json={"bed": 2}).status_code == 422
    assert solved == []
    assert client.get("/model").status_code == 200  # the probe sees FastAPI's routes
    assert len(solved) == 1


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_405_naming_post(client: TestClient, method: str) -> None:
    response = client.request(method, "/predict")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}
    assert response.headers["allow"] == "POST"


def test_the_openapi_page_documents_predict(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert list(spec["paths"])[0] == "/predict" and list(spec["paths"]["/predict"]) == ["post"]
    post = spec["paths"]["/predict"]["post"]
    assert post["summary"] == "Predict" and post["description"].startswith("Predict the price of one listing")
    body = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert body[0] == {"$ref": "#/components/schemas/Listing"} and body[1]["maxItems"] == 50
    assert [p["name"] for p in post["parameters"]] == ["explain"]
    assert {"200", "408", "409", "413", "415", "422", "503"} <= set(post["responses"])
    assert "X-Request-ID" in post["responses"]["200"]["headers"]
    answer = post["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/Prediction"}
    assert {"Listing", "Prediction"} <= set(spec["components"]["schemas"])


def test_a_body_streamed_in_pieces_is_answered_as_one(client: TestClient) -> None:
    whole = json.dumps([LISTING, dict(LISTING, bed=5)]).encode()
    pieces = (whole[at : at + 7] for at in range(0, len(whole), 7))  # no Content-Length
    streamed = client.post("/predict", content=pieces, headers={"Content-Type": "application/json"})
    assert streamed.status_code == 200
    assert streamed.json() == client.post("/predict", json=[LISTING, dict(LISTING, bed=5)]).json()


@pytest.mark.parametrize("query", ["explain=maybe", "explain=", "explain=false&explain=2"])
def test_an_unreadable_explain_flag_is_422_naming_it(client: TestClient, query: str) -> None:
    response = client.post(f"/predict?{query}", json=LISTING)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "explain"]


@pytest.mark.parametrize(("query", "explained"), [("", False), ("explain=no", False), ("explain=1", True)])
def test_the_explain_flag_reads_as_a_boolean(client: TestClient, query: str, explained: bool) -> None:
    response = client.post(f"/predict?{query}", json=LISTING)
    assert response.status_code == 200
    assert ("explanations" in response.json()) is explained
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)


def test_explanations_with_numpy_numbers_are_encoded_as_json_numbers() -> None:
    """The explanations' JSON is msgspec's (json.dumps took 41 µs a listing): a numpy number a
    model path hands back must still be a number, never a 500."""
    import numpy as np

    from serving.predict import _encode

    answer = [{"feature": "bed", "value": np.int64(3), "contribution": np.float64(0.25), "effect": np.float32(2.5)}]
    assert json.loads(_encode(answer)) == [{"feature": "bed", "value": 3, "contribution": 0.25, "effect": 2.5}]
