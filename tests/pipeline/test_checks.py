"""The checks before a decision, each a state of its own (and a task of its own in the DAG):
the schema judged, then the quality counted, then the rows cleaned, then validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_cli.config import load_settings
from mlops_cli.errors import MalformedBatchError
from mlops_cli.pipeline.engine import check_quality, check_schema, clean, fetch, store
from mlops_cli.store import meta
from mlops_cli.store.db import engine_for
from mlops_cli.store.frames import read_table
from mlops_cli.store.rounds import get_round
from mlops_cli.store.tables import clean_data
from tests.conftest import ROW, FixedSource, good_rows, pipeline_with


def test_each_check_writes_its_own_part_and_state_and_nothing_ahead_of_it(home: Path) -> None:
    settings = load_settings()
    bad = [{**ROW, "price": -5}, {**ROW, "bed": 500}]
    pipe = pipeline_with(settings, FixedSource({0: [{**row, "listing_url": "u"} for row in good_rows(20)] + bad}))
    engine = engine_for(settings)
    round_id = fetch(pipe, 0).round_id

    store(pipe, round_id)
    r = get_round(engine, round_id)
    assert r["state"] == "stored" and set(r["validation"]) == {"schema"}
    assert r["validation"]["schema"]["extra"] == ["listing_url"], "what arrived is recorded"
    assert "handled" not in r["validation"]["schema"], "and judged by the schema check, not here"
    with engine.connect() as conn:
        assert meta.first_schema(conn) is None

    check_schema(pipe, round_id)
    r = get_round(engine, round_id)
    schema = r["validation"]["schema"]
    assert r["state"] == "schema_checked" and schema["versus_first"] is None and schema["handled"]
    with engine.connect() as conn:
        assert "listing_url" in meta.first_schema(conn)["received"], "the reference of later answers"

    check_quality(pipe, round_id)
    r = get_round(engine, round_id)
    quality = r["validation"]["quality"]
    assert r["state"] == "quality_checked" and quality["rows"] == 22 and quality["kept"]["count"] == 20
    assert quality["target"]["non_positive"]["count"] == 1 and quality["out_of_range"]["impossible_bed"]["count"] == 1
    assert read_table(engine, clean_data).empty and r["rows_kept"] is None, "nothing cleaned yet"

    clean(pipe, round_id)
    r = get_round(engine, round_id)
    assert r["state"] == "cleaned" and r["rows_kept"] == 20 == len(read_table(engine, clean_data))
    assert r["validation"]["quality"] == quality, "cleaning keeps the check's report"


def test_a_later_answer_is_judged_against_the_first_and_a_rejected_one_keeps_its_report(home: Path) -> None:
    settings = load_settings()
    rows = good_rows(40)
    missing_price = [{k: v for k, v in row.items() if k != "price"} for row in rows[30:]]
    source = FixedSource({0: rows[:20], 1: [{**row, "agent": "x"} for row in rows[20:30]], 2: missing_price})
    pipe = pipeline_with(settings, source)
    for batch in (0, 1):
        round_id = fetch(pipe, batch).round_id
        store(pipe, round_id), check_schema(pipe, round_id)
    assert get_round(pipe.engine, round_id)["validation"]["schema"]["versus_first"] == {"new": ["agent"], "missing": []}
    rejected = fetch(pipe, 2).round_id
    with pytest.raises(MalformedBatchError, match="price"):
        store(pipe, rejected)
    r = get_round(pipe.engine, rejected)
    assert r["state"] == "rejected" and r["validation"]["schema"]["missing_required"] == ["price"]
    assert r["validation"]["schema"]["handled"], "a round that ends at store is judged there"


def test_the_runner_goes_through_every_check_in_order(home: Path) -> None:
    """What `mlops train` and each DAG task run: the steps in the order of the states."""
    from mlops_cli.pipeline.engine import process_round

    said: list[str] = []
    pipe = pipeline_with(load_settings(), FixedSource({0: good_rows(30)}))
    pipe.progress = said.append
    r = process_round(pipe, fetch(pipe, 0).round_id)
    steps = [next(s for s in said if what in s) for what in ("storing", "schema", "quality", "cleaning", "validating")]
    assert [said.index(s) for s in steps] == sorted(said.index(s) for s in steps), said
    assert r["state"] == "done" and r["validation"]["schema"]["handled"] is not None and r["validation"]["quality"]
