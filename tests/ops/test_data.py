"""`mlops data serve`: the course's contract, its release window and samples, bounded metrics."""

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mlops_cli.config import load_settings
from mlops_cli.ops.data import create_app
from mlops_cli.pipeline.sources import is_end_of_data, open_source


def client_for(home: Path, **options: object) -> TestClient:
    source = open_source(load_settings(generator_batches=3, generator_batch_rows=50))
    return TestClient(create_app(source, **options))


@pytest.fixture
def client(home: Path) -> TestClient:
    return client_for(home)


@pytest.fixture(scope="module")
def data_schema(tmp_path_factory: pytest.TempPathFactory):
    import schemathesis

    source = open_source(
        load_settings(home=tmp_path_factory.mktemp("fuzz"), generator_batches=3, generator_batch_rows=50)
    )
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(source, groups=3))


def _schema():
    import schemathesis

    return schemathesis.pytest.from_fixture("data_schema")


@_schema().parametrize()
def test_every_answer_of_the_data_api_is_the_documented_one(case) -> None:
    """All of schemathesis' checks but one: after the last batch the course's contract answers 400
    to a valid request (a state, not an input), which `positive_data_acceptance` calls a refusal."""
    from tests.serving.test_fuzz import all_checks

    leave = ("positive_data_acceptance",) if case.path == "/data" else ()
    case.call_and_validate(checks=all_checks(*leave))


def test_batches_come_in_order_then_the_end_of_data(client: TestClient) -> None:
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
    assert exhausted.status_code == 400 and is_end_of_data(exhausted.json()["detail"])


def test_day_is_optional_as_on_the_2026_course_server(client: TestClient) -> None:
    body = client.get("/data", params={"group_number": 1}).json()
    assert body["batch_number"] == 0 and body["day"] is None
    assert client.get("/data", params={"group_number": 1}).json()["batch_number"] == 1
    assert client.get("/restart_data_generation", params={"group_number": 1}).status_code == 200
    assert client.get("/data", params={"group_number": 1}).json()["batch_number"] == 0


def test_groups_have_their_own_cursor_and_restart(client: TestClient) -> None:
    assert client.get("/data", params={"group_number": 1, "day": "Monday"}).json()["batch_number"] == 0
    assert client.get("/data", params={"group_number": 1, "day": "Monday"}).json()["batch_number"] == 1
    assert client.get("/data", params={"group_number": 5, "day": "Monday"}).json()["batch_number"] == 0
    assert client.get("/restart_data_generation", params={"group_number": 1, "day": "Monday"}).status_code == 200
    assert client.get("/data", params={"group_number": 1, "day": "Monday"}).json()["batch_number"] == 0


@pytest.mark.parametrize("group", [0, 11, -3])
def test_a_group_outside_the_range_is_a_400_naming_it(client: TestClient, group: int) -> None:
    for path in ("/data", "/restart_data_generation"):
        response = client.get(path, params={"group_number": group})
        assert response.status_code == 400 and "groups are 1-10" in response.json()["detail"]
        assert not is_end_of_data(response.json()["detail"])


def test_bad_query_is_422_not_500(client: TestClient) -> None:
    assert client.get("/data", params={"group_number": "x"}).status_code == 422
    assert client.get("/data", params={"day": "Tuesday"}).status_code == 422


def test_same_batch_same_rows(client: TestClient) -> None:
    params = {"group_number": 1, "day": "Tuesday"}
    first = client.get("/data", params=params).json()["data"]
    client.get("/restart_data_generation", params=params)
    assert client.get("/data", params=params).json()["data"] == first


def test_inside_its_release_window_a_batch_is_answered_again_with_fresh_samples(home: Path) -> None:
    client = client_for(home, release_window=0.6, sample_share=0.2)
    params = {"group_number": 1}
    answers = [client.get("/data", params=params).json() for _ in range(3)]
    assert [a["batch_number"] for a in answers] == [0, 0, 0]
    whole = len(open_source(load_settings(generator_batches=3, generator_batch_rows=50)).rows(0))
    assert all(len(a["data"]) == -(-whole * 0.2 // 1) for a in answers)
    assert len({str(a["data"]) for a in answers}) > 1, "each answer is a fresh random sample"
    time.sleep(0.7)
    assert client.get("/data", params=params).json()["batch_number"] == 1


def test_cursors_survive_a_restart_of_the_server(home: Path) -> None:
    cursors = home / "cursors.json"
    first = client_for(home, cursor_file=cursors)
    assert [first.get("/data", params={"group_number": 3}).json()["batch_number"] for _ in range(2)] == [0, 1]
    again = client_for(home, cursor_file=cursors)
    assert again.get("/data", params={"group_number": 3}).json()["batch_number"] == 2


def test_health_and_metrics_with_bounded_labels(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    client.get("/data", params={"group_number": 1, "day": "Tuesday"})
    for n in range(50):  # free-text days must not grow the metrics without bound
        client.get("/restart_data_generation", params={"group_number": 1, "day": f"day-{n}"})
    metrics = client.get("/metrics").text
    assert 'data_api_batches_served_total{day="tuesday",group_number="1"} 1.0' in metrics
    assert 'data_api_restarts_total{day="other",group_number="1"} 50.0' in metrics
    assert "day-1" not in metrics


def test_the_docs_come_from_packaged_files_not_a_cdn(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "cdn." not in page and "/docs-static/swagger-ui-bundle.js" in page
    script = client.get("/docs-static/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    assert "/docs-static/redoc.standalone.js" in client.get("/redoc").text


@pytest.mark.parametrize("kind", ["generator", "file"])
def test_a_whole_batch_is_sent_as_the_source_rows_exactly(home: Path, kind: str) -> None:
    """The whole-batch answer is serialised straight from the source's frame: a client reads
    exactly the rows the source gives (same values and types, missing as null), counted in
    the metrics, and the body is plain JSON (no NaN)."""
    import json

    import pandas as pd

    settings = load_settings(generator_batches=2, generator_batch_rows=300)
    source = open_source(settings)
    if kind == "file":  # a CSV with missing cells, text ids and a batch column
        frame = pd.DataFrame(source.rows(0))
        frame.loc[::7, "house_size"] = None
        frame["batch"] = [i % 2 for i in range(len(frame))]
        home.mkdir(parents=True, exist_ok=True)
        frame.to_csv(home / "listings.csv", index=False)
        source = open_source(load_settings(data_source=f"csv:{home / 'listings.csv'}"))
    client = TestClient(create_app(source))
    response = client.get("/data", params={"group_number": 1})
    assert response.headers["content-type"] == "application/json"
    answer = json.loads(response.content, parse_constant=lambda c: pytest.fail(f"{c} in the answer"))
    assert answer["batch_number"] == 0 and answer["data"] == source.rows(0)
    assert answer["data"] and all(set(row) == set(answer["data"][0]) for row in answer["data"])
    metrics = client.get("/metrics").text
    assert f'data_api_rows_served_total{{day="none",group_number="1"}} {len(source.rows(0))}.0' in metrics
