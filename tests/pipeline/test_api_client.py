"""The inference API as our commands call it: every refusal named, a reload that never fails a promotion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_cli.config import load_settings
from mlops_cli.errors import MlopsError
from mlops_cli.pipeline.api_client import NotExplained, describe_422, request_predictions, request_reload
from tests.conftest import QuietHandler, serve_in_thread

ANSWERS = {
    "/predict": (200, {"predictions": [1.0], "model": {"name": "m", "version": 3, "alias": "champion"}}),
    "/predict?explain=true": (409, {"detail": "hgb has no exact contributions"}),
}


class FakeAPI(QuietHandler):
    seen: list[tuple[str, str, object]] = []
    status: dict[str, tuple[int, dict]] = {}

    def do_POST(self) -> None:  # noqa: N802 — http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        FakeAPI.seen.append((self.path, self.headers.get("Authorization", ""), body))
        self.answer(*FakeAPI.status.get(self.path, (404, {"detail": "no route"})))


@pytest.fixture
def api():
    FakeAPI.seen, FakeAPI.status = [], dict(ANSWERS)
    server, url = serve_in_thread(FakeAPI)
    yield url
    server.shutdown()


def test_one_listing_goes_as_an_object_and_several_as_a_list(api: str) -> None:
    assert request_predictions(api, [{"a": 1}])["model"]["version"] == 3
    request_predictions(api, [{"a": 1}, {"a": 2}])
    assert [body for _, _, body in FakeAPI.seen] == [{"a": 1}, [{"a": 1}, {"a": 2}]]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (422, {"detail": [{"loc": ["body", 1, "house_size"], "msg": "too small"}]}, "listing 1 → house_size"),
        (503, {"detail": "no champion yet"}, "no model yet: no champion yet"),
        (500, {"detail": "boom"}, "answered HTTP 500"),
    ],
)  # fmt: skip
def test_each_refusal_is_a_clear_error(api: str, status: int, body: dict, expected: str) -> None:
    FakeAPI.status["/predict"] = (status, body)
    with pytest.raises(MlopsError, match=expected):
        request_predictions(api, [{"a": 1}])


def test_a_model_that_cannot_explain_is_its_own_error(api: str) -> None:
    with pytest.raises(NotExplained, match="hgb has no exact contributions"):
        request_predictions(api, [{"a": 1}], explain=True)


def test_an_api_that_is_not_there_names_how_to_start_it() -> None:
    with pytest.raises(MlopsError, match="not reachable") as caught:
        request_predictions("http://127.0.0.1:9", [{"a": 1}], timeout=2)
    assert "mlops serve" in caught.value.hint


def test_a_reload_sends_the_token_and_turns_every_failure_into_a_warning(api: str, home: Path) -> None:
    settings = load_settings(api_url=api)
    FakeAPI.status["/load_model"] = (200, {"loaded": {}})
    assert request_reload(settings) is None
    path, auth, _ = FakeAPI.seen[-1]
    assert path == "/load_model" and auth == f"Bearer {settings.api_token_value()}"
    FakeAPI.status["/load_model"] = (401, {"detail": "bad token"})
    assert "reload failed: HTTP 401" in request_reload(settings)
    assert "not reachable" in request_reload(load_settings(api_url="http://127.0.0.1:9"))


def test_validation_errors_read_as_where_and_what() -> None:
    assert describe_422({"detail": "plain"}) == "plain"
    assert describe_422([{"loc": ["body", "city"], "msg": "missing"}]) == "city: missing"
