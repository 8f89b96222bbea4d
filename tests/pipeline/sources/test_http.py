"""A remote data API: retries, one deadline, a size cap, the end of the data in the server's words."""

import json
import time
from pathlib import Path

import pytest

from mlops_cli.config import load_settings
from mlops_cli.errors import SourceError, SourceExhausted
from mlops_cli.pipeline.sources import HttpSource
from tests.conftest import ROW, QuietHandler, batch_body, serve_in_thread


def fast_settings(home: Path, **extra: object):
    return load_settings(data_backoff=0.01, data_timeout=1.0, **extra)


def test_http_source_retries_500_then_recovers(home: Path, scripted) -> None:
    api = scripted([(500, "oops", 0), (503, "busy", 0), (200, batch_body(4), 0)])
    answer = HttpSource(api.url, fast_settings(home, data_day="Tuesday")).fetch()
    assert answer.number == 4 and answer.rows == [ROW]
    assert answer.body == batch_body(4).encode(), "the body is kept byte for byte"
    assert len(api.calls) == 3
    assert "group_number=1" in api.calls[0] and "day=Tuesday" in api.calls[0]


def test_http_source_retries_malformed_json_and_timeouts(home: Path, scripted) -> None:
    api = scripted([(200, "{not json", 0), (200, batch_body(0), 1.5), (200, batch_body(0), 0)])
    assert HttpSource(api.url, fast_settings(home)).fetch().number == 0
    assert len(api.calls) == 3
    assert all("day=" not in call for call in api.calls), "no day unless MLOPS_DATA_DAY is set"


def test_http_source_gives_up_with_a_clear_error(home: Path, scripted) -> None:
    api = scripted([(500, "x", 0)] * 3)
    with pytest.raises(SourceError, match=r"failed after 3 attempts \(HTTP 500\)"):
        HttpSource(api.url, fast_settings(home, data_retries=2)).fetch()


@pytest.mark.parametrize(
    "detail",
    [
        "Ya se recolectó toda la información mínima necesaria",
        "Ya se recolecto toda la informacion minima necesaria",
        "Ya se recolectó toda la información minima necesaria",
        "every batch has been served to group 1 (10 batches); GET /restart_data_generation starts again",
    ],
)
def test_the_end_of_the_data_is_recognised_by_the_servers_words(home: Path, scripted, detail: str) -> None:
    api = scripted([(400, json.dumps({"detail": detail}), 0)])
    with pytest.raises(SourceExhausted) as ended:
        HttpSource(api.url, fast_settings(home)).fetch()
    # said in the CLI's words (no course jargon, no endpoint); the server's own words are kept
    assert ended.value.detail == f"{api.url} has served every batch of group 1"
    assert ended.value.server_said == detail


def test_any_other_400_is_an_error_with_the_servers_detail(home: Path, scripted) -> None:
    api = scripted([(400, '{"detail": "Número de grupo inválido"}', 0)])
    with pytest.raises(SourceError, match="refused the request: Número de grupo inválido"):
        HttpSource(api.url, fast_settings(home)).fetch()


@pytest.mark.parametrize("number", ['"two"', "-1", "1.5", "true"])
def test_a_batch_number_that_is_not_a_count_is_an_error(home: Path, scripted, number: str) -> None:
    api = scripted([(200, f'{{"batch_number": {number}, "data": []}}', 0)])
    with pytest.raises(SourceError, match="not an integer in 0"):
        HttpSource(api.url, fast_settings(home)).fetch()


class DribbleAPI:
    """A server that sends its headers, then its body one byte every ``pause`` seconds (or stalls)."""

    def __init__(self, body: bytes, pause: float) -> None:
        self.sent = 0
        api = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        api.sent += 1
                        time.sleep(pause)
                except OSError:  # the client hung up
                    pass

        self.server, self.url = serve_in_thread(Handler)


@pytest.mark.parametrize("pause", [0.5, 60.0], ids=["trickle", "stall"])
def test_one_deadline_bounds_the_whole_request(home: Path, pause: float) -> None:
    body = batch_body(0).encode()
    api = DribbleAPI(body, pause)
    try:
        with pytest.raises(SourceError, match=r"failed after 1 attempts \(no whole answer within 2s\)"):
            HttpSource(api.url, load_settings(data_timeout=2, data_retries=0)).fetch()
        assert api.sent < len(body), "the client gave up before the server finished its body"
    finally:
        api.server.shutdown()


def test_an_answer_larger_than_the_cap_is_refused(home: Path, scripted) -> None:
    big = json.dumps({"batch_number": 0, "data": [ROW] * 200})
    api = scripted([(200, big, 0)])
    with pytest.raises(SourceError, match="sent more than 2,048 bytes"):
        HttpSource(api.url, fast_settings(home, data_max_bytes=2048)).fetch()
    assert len(api.calls) == 1, "a too large answer is not asked for again"


@pytest.mark.parametrize("deadline", [2.0, 9.5, 10.0, 60.0])
def test_the_deadline_is_the_only_timeout_that_ends_a_slow_answer(home: Path, monkeypatch, deadline: float) -> None:
    """httpx's own read timeout used to equal the deadline, so a stalled server was reported as
    'ReadTimeout' or as 'no whole answer within Ns' depending on which thread woke first (the
    [stall] case above failed under load). Read/write/pool timeouts now come after the deadline;
    only connecting may fail sooner (10 s), and only when the deadline is longer than that."""
    import httpx

    seen: list[httpx.Timeout] = []

    class Recording(httpx.Client):
        def __init__(self, *args, timeout: httpx.Timeout, **kwargs) -> None:
            seen.append(timeout)
            super().__init__(*args, timeout=timeout, **kwargs)

    monkeypatch.setattr(httpx, "Client", Recording)
    api = DribbleAPI(batch_body(0).encode(), 0.0)  # answers at once
    try:
        HttpSource(api.url, load_settings(data_timeout=deadline, data_retries=0)).fetch()
    finally:
        api.server.shutdown()
    (timeout,) = seen
    assert min(timeout.read, timeout.write, timeout.pool) > deadline
    assert timeout.connect > deadline or (deadline > 10 and timeout.connect == 10)


@pytest.mark.parametrize("number", ["NaN", "1e400", "-1e400", str(2**63), str(2**31)])
def test_a_batch_number_beyond_the_contract_is_a_clear_error(home: Path, scripted, number: str) -> None:
    """NaN, infinities and numbers past 2^31-1 are refused in one line, not an internal error."""
    api = scripted([(200, f'{{"batch_number": {number}, "data": []}}', 0)])
    with pytest.raises(SourceError, match=r"not an integer in 0 \.\. 2147483647"):
        HttpSource(api.url, fast_settings(home)).fetch()
