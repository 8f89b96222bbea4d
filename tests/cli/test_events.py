"""`mlops events list|export`: the inference events as a person and a script read them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from mlops_cli.config import load_settings
from mlops_cli.store.db import engine_for
from mlops_cli.store.events import write_events
from tests.conftest import event_row, run_mlops


@pytest.fixture
def events(home: Path) -> datetime:
    """Four requests: two answered by v1 (one of two listings), one by v2, one refused."""
    now = datetime.now(UTC)
    austin = '{"city":"Austin"}'
    rows = [
        event_row("old", now - timedelta(hours=3), listing=austin, prediction=300000.0),
        event_row("pair", now - timedelta(minutes=5), listing=austin, prediction=310000.0),
        event_row(
            "pair",
            now - timedelta(minutes=5),
            item=1,
            listing='{"city":"Atlantis"}',
            prediction=320000.0,
            unseen='["city"]',
        ),
        event_row("v2", now - timedelta(minutes=2), version=2, path="trees", listing=austin, prediction=330000.0),
        event_row(
            "bad",
            now - timedelta(minutes=1),
            status=422,
            item=None,
            listing="{bed",
            prediction=None,
            unseen=None,
            error_kind="invalid",
            error='{"detail":[]}',
        ),
    ]
    write_events(engine_for(load_settings()), rows)
    return now


def test_list_shows_the_newest_first_and_filters(events: datetime) -> None:
    listed = json.loads(run_mlops("events", "list", "--json").stdout)
    assert [e["request_id"] for e in listed] == ["bad", "v2", "pair", "pair", "old"]
    assert listed[2]["unseen"] == ["city"] and listed[0]["listing"] == "{bed"
    assert datetime.fromisoformat(listed[0]["received_at"]).tzinfo is not None

    def ids(*args: str) -> list[str]:
        result = run_mlops("events", "list", "--json", *args)
        assert result.returncode == 0, result.stderr
        return [e["request_id"] for e in json.loads(result.stdout)]

    assert ids("--status", "error") == ["bad"] and ids("--status", "422") == ["bad"]
    assert ids("--status", "ok", "--since", "1h") == ["v2", "pair", "pair"]
    assert ids("--version", "2") == ["v2"] and ids("--limit", "2") == ["bad", "v2"]
    since = (events - timedelta(minutes=3)).replace(tzinfo=None).isoformat(timespec="seconds")
    assert ids("--since", since) == ["bad", "v2"]
    # the X-Request-ID a user reports: that request's listings, every one of them
    assert ids("--request-id", "pair") == ["pair", "pair"] and ids("--request-id", "nobody") == []
    assert ids("--request-id", "pair", "--status", "error") == []

    table = run_mlops("events", "list", env={"COLUMNS": "80"})
    assert table.returncode == 0 and "unseen" in table.stdout and "invalid" in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--since", "yesterday"], "--since"),
        (["--status", "fine"], "--status"),
        (["--request-id", "a b"], "X-Request-ID"),
    ],
)
def test_bad_filters_are_usage_errors(home: Path, args: list[str], words: str) -> None:
    result = run_mlops("events", "list", *args)
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


def test_export_writes_every_field_as_csv_or_parquet(events: datetime, tmp_path: Path) -> None:
    parquet, csv = tmp_path / "events.parquet", tmp_path / "events.csv"
    result = run_mlops("events", "export", str(parquet), "--status", "ok", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"path": str(parquet), "format": "parquet", "events": 4}
    frame = pd.read_parquet(parquet)
    assert list(frame["request_id"]) == ["old", "pair", "pair", "v2"], "oldest first"
    assert str(frame["received_at"].dt.tz) == "UTC" and frame["prediction"].tolist()[-1] == 330000.0

    assert run_mlops("events", "export", str(csv)).returncode == 0
    assert len(pd.read_csv(csv)) == 5
    again = run_mlops("events", "export", str(csv))
    assert again.returncode == 1 and "exists" in again.stderr and "--force" in again.stderr
    assert run_mlops("events", "export", str(csv), "--force", "--version", "2").returncode == 0
    assert list(pd.read_csv(csv)["request_id"]) == ["v2"]
