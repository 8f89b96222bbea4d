import json
import time
from pathlib import Path

import pandas as pd
import pytest

from mlops_cli.config import load_settings
from mlops_cli.errors import ConfigError, SourceError, SourceExhausted
from mlops_cli.pipeline.sources import FileSource, HttpSource, open_source
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


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_file_source_cuts_batches_and_tolerates_absent_columns(home: Path, suffix: str) -> None:
    frame = pd.DataFrame([{**ROW, "price": 100_000 + i} for i in range(10)])  # no brokered_by, street...
    path = home.parent / f"listings{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    source = FileSource(path, batches=3)
    assert source.numbers() == [0, 1, 2]
    assert [len(source.fetch(n).rows) for n in source.numbers()] == [4, 4, 2]
    assert source.fetch(1).rows[0]["price"] == 100_004


def test_file_source_uses_a_batch_column_and_keeps_its_gaps(home: Path) -> None:
    path = home.parent / "batched.csv"
    pd.DataFrame([{**ROW, "batch": b} for b in (7, 7, 9)]).to_csv(path, index=False)
    source = FileSource(path, batches=10)
    assert source.numbers() == [7, 9]
    assert [len(source.fetch(n).rows) for n in (7, 9)] == [2, 1]
    with pytest.raises(SourceError, match="has no batch 8 \\(its batches: 7, 9\\)"):
        source.fetch(8)


@pytest.mark.parametrize(
    ("values", "bad", "line"),
    [(["0", "1", ""], "nan", 4), (["0", "1.5"], "'1.5'", 3), (["0", "two"], "'two'", 3), (["0", "-1"], "'-1'", 3)],
)
def test_a_batch_column_that_is_not_whole_numbers_names_the_first_bad_line(
    home: Path, values: list[str], bad: str, line: int
) -> None:
    path = home.parent / "bad_batches.csv"
    pd.DataFrame([{**ROW, "batch": v} for v in values]).to_csv(path, index=False)
    with pytest.raises(ConfigError, match=f"line {line}: batch {bad} is not a non-negative integer"):
        FileSource(path, batches=10)


def test_a_wrong_file_fails_on_its_header_before_the_rest_is_read(home: Path) -> None:
    path = home.parent / "junk.csv"
    with path.open("w") as out:
        out.write("a,b,c\n" + "1,2,3\n" * 2000)
        out.write('"unterminated,' + "x" * 100 + "\n")  # reading this far would fail differently
    with pytest.raises(ConfigError, match="missing required column"):
        FileSource(path, batches=10)


def test_missing_file_is_a_config_error(home: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        open_source(load_settings(data_source="csv:nope.csv"))


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


def _both_routes(source, batch: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from mlops_cli.pipeline.ingest import normalised_rows

    rows = source.fetch(batch).rows  # JSON objects, as a data API client has them
    columns = source.fetch(batch, columnar=True).rows
    pd.testing.assert_frame_equal(columns, pd.DataFrame.from_records(rows), check_exact=True)
    return normalised_rows(columns, "columns"), normalised_rows(rows, "rows")


@pytest.mark.parametrize("rows", [300, 5000])
def test_in_process_sources_hand_over_columns_equal_to_their_rows(home: Path, rows: int) -> None:
    """The loop takes an in-process source's batch as columns (1.7 s -> 0.5 s for 220k rows):
    the same frame from_records builds from its JSON rows, value for value and dtype for dtype."""
    from mlops_cli.pipeline.sources import GeneratorSource

    source = GeneratorSource(load_settings(generator_batches=3, generator_batch_rows=rows, generator_seed=rows))
    for batch in source.numbers():
        columns, rows_route = _both_routes(source, batch)
        pd.testing.assert_frame_equal(columns, rows_route, check_exact=True)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_file_sources_hand_over_columns_equal_to_their_rows(home: Path, suffix: str) -> None:
    """Files bring what the generator does not: integers, text ids, all-missing columns, dates
    as datetimes (Parquet: the JSON route), a batch column. (The generator's zip codes are
    numbers and text mixed: the JSON route too.)"""
    frame = pd.DataFrame(
        {
            **{k: [v] * 40 for k, v in ROW.items()},
            "price": range(100_000, 100_040),  # integers
            "zip_code": ["00601", 601, None, "78701.0"] * 10,
            "acre_lot": [0.1234567890123, None, 1e-12, 3.0] * 10,  # rounded by to_json
            "street": [None] * 40,  # no value at all
            "brokered_by": ["10481.0", None, "x", "1"] * 10,
            "prev_sold_date": pd.to_datetime(["2020-01-02", None, "1999-12-31", "2021-06-30"] * 10),
            "batch": [0] * 20 + [1] * 20,
        }
    )
    path = home.parent / f"listings{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:  # Parquet keeps types: one per column
        frame.assign(zip_code=["00601", "601", None, "78701"] * 10, price=frame["price"] * 1.5).to_parquet(path)
    source = FileSource(path, batches=2)
    for batch in source.numbers():
        columns, rows_route = _both_routes(source, batch)
        pd.testing.assert_frame_equal(columns, rows_route, check_exact=True)


@pytest.mark.parametrize("number", ["NaN", "1e400", "-1e400", str(2**63), str(2**31)])
def test_a_batch_number_beyond_the_contract_is_a_clear_error(home: Path, scripted, number: str) -> None:
    """NaN, infinities and numbers past 2^31-1 are refused in one line, not an internal error."""
    api = scripted([(200, f'{{"batch_number": {number}, "data": []}}', 0)])
    with pytest.raises(SourceError, match=r"not an integer in 0 \.\. 2147483647"):
        HttpSource(api.url, fast_settings(home)).fetch()
