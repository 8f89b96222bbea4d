"""Locust's own statistics read back, durations as people write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_cli.errors import MlopsError
from mlops_cli.ops.loadtest import parse_duration, read_stats

HEADER = "Type,Name,Request Count,Failure Count,Requests/s,50%,95%,99%\n"


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("30s", 30), ("2m", 120), ("1m30s", 90), ("1h", 3600)])
def test_durations_read_as_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "1.5m", "30 s", "-3"])
def test_anything_else_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="duration like 30s, 2m or 1m30s"):
        parse_duration(text)


def test_the_stats_file_gives_each_endpoint_and_the_aggregate(tmp_path: Path) -> None:
    path = tmp_path / "stats.csv"
    path.write_text(
        HEADER
        + "POST,/predict (1 listing),120,2,40.123,7,19,33\n"
        + "POST,/predict (20 listings),30,0,10,N/A,41,60\n"
        + ",Aggregated,150,2,50.1,8,21,40\n"
    )
    endpoints, total = read_stats(path)
    assert [e.name for e in endpoints] == ["/predict (1 listing)", "/predict (20 listings)"]
    assert (endpoints[0].requests, endpoints[0].failures, endpoints[0].rps, endpoints[0].p95_ms) == (120, 2, 40.12, 19)
    assert endpoints[1].p50_ms == 0.0, "Locust's N/A (no sample) reads as nothing measured"
    assert (total.requests, total.p99_ms) == (150, 40)
    path.write_text(HEADER + "POST,/predict,1,0,1,1,1,1\n")
    with pytest.raises(MlopsError, match="no aggregated statistics"):
        read_stats(path)
