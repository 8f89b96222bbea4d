"""`mlops logs`' work: times read off each service's lines, logs interleaved, followed as they grow."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mlops_cli.config import load_settings
from mlops_cli.errors import StackError
from mlops_cli.ops.logs import follow, line_time, lines_since, log_file, merged_logs, since


def _logs(home: Path) -> Path:
    folder = home / "logs"
    folder.mkdir(parents=True)
    (folder / "api.log").write_text(
        "2026-11-28 10:00:01 INFO started\nTraceback (most recent call last):\n  boom\n2026-11-28 10:00:09 INFO done\n"
    )
    (folder / "mlflow.log").write_text("2026/11/28 10:00:05 INFO mlflow up\n")
    return folder


def test_a_line_says_its_time_in_any_of_the_services_formats() -> None:
    assert line_time("2026-11-28T10:00:05.123Z level=info") == datetime(2026, 11, 28, 10, 0, 5)
    assert line_time("2026/11/28 10:00:05 INFO mlflow") == datetime(2026, 11, 28, 10, 0, 5)
    assert line_time("  File 'x.py', line 3") is None


def test_logs_interleave_by_time_and_a_line_without_one_keeps_the_one_before(home: Path) -> None:
    _logs(home)
    settings = load_settings()
    assert merged_logs(settings) == [
        "api    | 2026-11-28 10:00:01 INFO started",
        "api    | Traceback (most recent call last):",
        "api    |   boom",
        "mlflow | 2026/11/28 10:00:05 INFO mlflow up",
        "api    | 2026-11-28 10:00:09 INFO done",
    ]
    assert merged_logs(settings, since=datetime(2026, 11, 28, 10, 0, 5), lines=0)[0].startswith("mlflow")
    assert len(merged_logs(settings, lines=2)) == 2
    assert lines_since(log_file(settings, "api"), datetime(2026, 11, 28, 10, 0, 2)) == ["2026-11-28 10:00:09 INFO done"]


def test_since_reads_durations_and_times(home: Path) -> None:
    assert abs(since("10m") - (datetime.now() - timedelta(minutes=10))) < timedelta(seconds=5)  # noqa: DTZ005
    assert since("2026-11-28T10:00") == datetime(2026, 11, 28, 10, 0)
    with pytest.raises(ValueError, match="give 10m, 2h, 1d"):
        since("yesterday-ish")


def test_a_log_that_is_not_there_is_named(home: Path) -> None:
    settings = load_settings()
    with pytest.raises(StackError, match="no logs yet"):
        merged_logs(settings)
    with pytest.raises(StackError, match="unknown service 'nope'"):
        log_file(settings, "nope")
    (home / "logs").mkdir(parents=True)
    with pytest.raises(StackError, match="no log for api yet"):
        log_file(settings, "api")


def test_following_gives_only_new_lines_of_one_or_all_logs(home: Path) -> None:
    folder = _logs(home)
    settings = load_settings()
    one, every = follow(settings, "api", poll=0.01), follow(settings, poll=0.01)
    got: dict[str, list[str]] = {"one": [], "every": []}

    def read(name: str, lines, count: int) -> None:
        for line in lines:
            got[name].append(line)
            if len(got[name]) == count:
                return

    # generators start reading (and seek to the end) on their first next(): start both first
    readers = [
        threading.Thread(target=read, args=("one", one, 1)),
        threading.Thread(target=read, args=("every", every, 2)),
    ]
    for reader in readers:
        reader.start()
    time.sleep(0.5)
    with (folder / "api.log").open("a") as api, (folder / "mlflow.log").open("a") as mlflow:
        api.write("2026-11-28 10:01:00 INFO new\n")
        mlflow.write("2026/11/28 10:01:01 INFO later\n")
    for reader in readers:
        reader.join(timeout=10)
    assert got["one"] == ["2026-11-28 10:01:00 INFO new\n"]
    assert sorted(got["every"]) == [
        "api    | 2026-11-28 10:01:00 INFO new\n",
        "mlflow | 2026/11/28 10:01:01 INFO later\n",
    ]
