from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mlops_cli.data_api import create_app
from mlops_cli.settings import load_settings
from mlops_cli.sources import open_source


@pytest.fixture
def client(home: Path) -> TestClient:
    return TestClient(create_app(open_source(load_settings(generator_batches=3, generator_batch_rows=50))))


def test_batches_come_in_order_then_400(client: TestClient) -> None:
    params = {"group_number": 2, "day": "Tuesday"}
    numbers = []
    for _ in range(3):
        response = client.get("/data", params=params)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"group_number", "day", "batch_number", "data"}
        assert body["group_number"] == 2 and body["day"] == "Tuesday"
        assert isinstance(body["data"], list) and body["data"]
        numbers.append(body["batch_number"])
    assert numbers == [0, 1, 2]
    exhausted = client.get("/data", params=params)
    assert exhausted.status_code == 400 and "detail" in exhausted.json()


def test_groups_have_their_own_cursor_and_restart(client: TestClient) -> None:
    assert client.get("/data", params={"group_number": 1, "day": "Monday"}).json()["batch_number"] == 0
    assert client.get("/data", params={"group_number": 1, "day": "Monday"}).json()["batch_number"] == 1
    assert client.get("/data", params={"group_number": 5, "day": "Monday"}).json()["batch_number"] == 0
    assert client.get("/restart_data_generation", params={"group_number": 1, "day": "Monday"}).status_code == 200
    assert client.get("/data", params={"group_number": 1, "day": "Monday"}).json()["batch_number"] == 0


def test_same_batch_same_rows(client: TestClient) -> None:
    params = {"group_number": 1, "day": "Tuesday"}
    first = client.get("/data", params=params).json()["data"]
    client.get("/restart_data_generation", params=params)
    assert client.get("/data", params=params).json()["data"] == first


def test_bad_query_is_422_not_500(client: TestClient) -> None:
    assert client.get("/data", params={"group_number": "x", "day": "Tuesday"}).status_code == 422
    assert client.get("/data", params={"day": "Tuesday"}).status_code == 422


def test_health_and_metrics(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    client.get("/data", params={"group_number": 1, "day": "Tuesday"})
    metrics = client.get("/metrics").text
    assert 'data_api_batches_served_total{day="Tuesday",group_number="1"} 1.0' in metrics
