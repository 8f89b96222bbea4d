import json
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from mlops_cli.errors import ConfigError, SourceError, SourceExhausted
from mlops_cli.settings import load_settings
from mlops_cli.sources import FileSource, HttpSource, open_source
from tests.conftest import ROW, QuietHandler, serve_in_thread


class ScriptedAPI:
    """A real HTTP server on loopback that answers /data from a script of (status, body, delay)."""

    def __init__(self, script: list[tuple[int, str, float]]) -> None:
        self.script = list(script)
        self.calls: list[str] = []
        api = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                api.calls.append(self.path)
                status, body, delay = api.script.pop(0) if api.script else (400, '{"detail": "done"}', 0)
                time.sleep(delay)
                self.answer(status, body)

        self.server, self.url = serve_in_thread(Handler)


@pytest.fixture
def scripted() -> Iterator[type[ScriptedAPI]]:
    servers: list[ScriptedAPI] = []

    def make(script: list[tuple[int, str, float]]) -> ScriptedAPI:
        servers.append(ScriptedAPI(script))
        return servers[-1]

    yield make
    for server in servers:
        server.server.shutdown()


def batch_body(number: int) -> str:
    return json.dumps({"group_number": 1, "day": "Tuesday", "batch_number": number, "data": [ROW]})


def fast_settings(home: Path, **extra: object):  # noqa: ANN202
    return load_settings(data_backoff=0.01, data_timeout=1.0, **extra)


def test_http_source_retries_500_then_recovers(home: Path, scripted) -> None:  # noqa: ANN001
    api = scripted([(500, "oops", 0), (503, "busy", 0), (200, batch_body(4), 0)])
    batch = HttpSource(api.url, fast_settings(home)).fetch()
    assert batch.number == 4 and batch.rows == [ROW]
    assert len(api.calls) == 3
    assert "group_number=1" in api.calls[0] and "day=Tuesday" in api.calls[0]


def test_http_source_retries_malformed_json_and_timeouts(home: Path, scripted) -> None:  # noqa: ANN001
    api = scripted([(200, "{not json", 0), (200, batch_body(0), 1.5), (200, batch_body(0), 0)])
    assert HttpSource(api.url, fast_settings(home)).fetch().number == 0
    assert len(api.calls) == 3


def test_http_source_gives_up_with_a_clear_error(home: Path, scripted) -> None:  # noqa: ANN001
    api = scripted([(500, "x", 0)] * 3)
    with pytest.raises(SourceError, match=r"failed after 3 attempts \(HTTP 500\)"):
        HttpSource(api.url, fast_settings(home, data_retries=2)).fetch()


def test_http_400_means_exhausted_not_error(home: Path, scripted) -> None:  # noqa: ANN001
    api = scripted([(400, '{"detail": "all batches served"}', 0)])
    with pytest.raises(SourceExhausted, match="all batches served"):
        HttpSource(api.url, fast_settings(home)).fetch()


def test_http_source_refuses_an_out_of_order_batch(home: Path, scripted) -> None:  # noqa: ANN001
    api = scripted([(200, batch_body(5), 0)])
    with pytest.raises(SourceError, match="served batch 5, not batch 2"):
        HttpSource(api.url, fast_settings(home)).fetch(2)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_file_source_cuts_batches_and_tolerates_absent_columns(home: Path, suffix: str) -> None:
    frame = pd.DataFrame([{**ROW, "price": 100_000 + i} for i in range(10)])  # no brokered_by, street...
    path = home.parent / f"listings{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    source = FileSource(path, batches=3, batch_rows=0)
    sizes = []
    while True:
        try:
            sizes.append(len(source.fetch().rows))
        except SourceExhausted:
            break
    assert sizes == [4, 4, 2]
    assert source.fetch(1).rows[0]["price"] == 100_004


def test_file_source_uses_a_batch_column_when_present(home: Path) -> None:
    path = home.parent / "batched.csv"
    pd.DataFrame([{**ROW, "batch": b} for b in (7, 7, 9)]).to_csv(path, index=False)
    source = FileSource(path, batches=10, batch_rows=0)
    assert [len(source.fetch(i).rows) for i in range(2)] == [2, 1]


def test_missing_file_is_a_config_error(home: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        open_source(load_settings(data_source="csv:nope.csv"))
