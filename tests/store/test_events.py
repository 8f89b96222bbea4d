"""The inference events table on each backend: bulk writes, filters, newest first, aged out."""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path

import pytest

from mlops_cli.config import load_settings
from mlops_cli.store.db import engine_for
from mlops_cli.store.events import (
    SQLITE_ROWS_PER_INSERT,
    answered_listings,
    count_events,
    delete_events_before,
    iter_events,
    read_events,
    shadow_requests,
    write_events,
)
from mlops_cli.store.tables import now
from tests.conftest import event_row


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def engine(request: pytest.FixtureRequest, home: Path):  # noqa: ANN201
    if request.param == "sqlite":
        return engine_for(load_settings())
    request.applymarker(pytest.mark.external_db)
    url = request.getfixturevalue(f"{request.param}_url")
    return engine_for(load_settings(data_db_url=url))


def test_bulk_writes_read_back_newest_first_and_filter(engine) -> None:  # noqa: ANN001
    start = now()
    rows = [event_row(f"ok{i}", start, version=1 + i % 2, listing='{"bed": 3}', prediction=float(i)) for i in range(5)]
    rows += [event_row("bad", start, status=422, version=None, item=None, listing=None, prediction=None,
                       error_kind="validation", error="house_size: too small")]  # fmt: skip
    write_events(engine, rows)
    events = read_events(engine)
    assert [e["request_id"] for e in events] == ["bad", "ok4", "ok3", "ok2", "ok1", "ok0"]
    assert events[0]["error"] == "house_size: too small" and events[0]["received_at"].tzinfo is not None
    assert abs(events[1]["received_at"] - start) < timedelta(seconds=1), "the time comes back in UTC"
    assert [e["request_id"] for e in read_events(engine, status="error")] == ["bad"]
    assert len(read_events(engine, status="ok")) == 5 and len(read_events(engine, status="422")) == 1
    assert [e["request_id"] for e in read_events(engine, version=2)] == ["ok3", "ok1"]
    assert len(read_events(engine, limit=2)) == 2
    assert read_events(engine, since=start + timedelta(minutes=1)) == []
    assert [len(chunk) for chunk in iter_events(engine, chunk=4)] == [4, 2]
    assert len(answered_listings(engine, since=start - timedelta(minutes=1))) == 5, "errors are not listings"


def test_events_age_out_and_shadow_requests_are_counted_once(engine) -> None:  # noqa: ANN001
    old, new = now() - timedelta(days=10), now()
    write_events(
        engine, [event_row("old", old), *(event_row("new", new, item=i, shadow=(2, 1.0, 0.5)) for i in range(3))]
    )
    assert shadow_requests(engine, 1, 2) == 1, "one request of three listings"
    assert delete_events_before(engine, now() - timedelta(days=1)) == 1 and count_events(engine) == 3


def test_more_rows_than_one_sqlite_statement_takes(home: Path) -> None:
    engine = engine_for(load_settings())
    at = now().astimezone(UTC)
    write_events(engine, [event_row(f"r{i}", at) for i in range(SQLITE_ROWS_PER_INSERT * 2 + 7)])
    assert count_events(engine) == SQLITE_ROWS_PER_INSERT * 2 + 7


def test_an_event_at_a_whole_second_is_found_from_that_second(engine) -> None:  # noqa: ANN001
    """On SQLite a time is text: written without its ".000000" it sorted before the same time
    asked for by SQLAlchemy, and `--since` that second missed it."""
    whole = now().replace(microsecond=0)
    write_events(engine, [event_row("whole", whole), event_row("later", whole + timedelta(microseconds=5))])
    assert sorted(e["request_id"] for e in read_events(engine, since=whole)) == ["later", "whole"]
    assert delete_events_before(engine, whole) == 0, "nothing is before it"
