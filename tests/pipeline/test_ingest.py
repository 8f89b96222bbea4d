"""Step 1: answers merged into raw_data (repeats add only what is new), validated, normalised."""

from pathlib import Path

import pandas as pd
import pytest

from mlops_cli.config import load_settings
from mlops_cli.errors import MalformedBatchError
from mlops_cli.pipeline.engine import check_schema, fetch, store
from mlops_cli.pipeline.ingest import new_rows, normalised_rows
from mlops_cli.store.db import engine_for
from mlops_cli.store.frames import read_table
from mlops_cli.store.rounds import batch_log_rows, read_body
from mlops_cli.store.tables import raw_data
from tests.conftest import ROW, FixedSource, good_rows, pipeline_with


@pytest.fixture
def settings(home: Path):
    return load_settings()


def frame(rows: list[dict]) -> pd.DataFrame:
    return normalised_rows(rows, "test")


def test_a_repeated_answer_adds_only_rows_not_stored_yet_counting_copies() -> None:
    a, b, c = good_rows(3)
    stored = frame([a, a, b])
    added = new_rows(stored, frame([a, a, a, b, c]))  # a third copy of a, and c are new
    assert sorted(added["price"].tolist()) == [a["price"], c["price"]]
    assert new_rows(stored, frame([b, a])).empty, "a sample of what is stored adds nothing"
    assert len(new_rows(frame([]), frame([a, a]))) == 2, "copies within one answer are kept"


def test_answering_a_batch_again_keeps_one_copy_and_merges_what_is_new(settings) -> None:
    rows = good_rows(30)
    source = FixedSource({0: rows[:20]})
    pipe = pipeline_with(settings, source)
    first = fetch(pipe, 0).round_id
    store(pipe, first)
    source.batches[0] = rows[10:30]  # a second answer of batch 0: half of it already stored
    second = fetch(pipe, 0).round_id
    store(pipe, second)
    source.batches[0] = rows[5:15]  # a third: nothing new
    third = fetch(pipe, 0).round_id
    store(pipe, third)
    stored = read_table(engine_for(settings), raw_data)
    assert sorted(stored["price"]) == sorted(r["price"] for r in rows)
    assert stored.groupby("round").size().to_dict() == {first: 20, second: 10}
    log = {r["id"]: r for r in batch_log_rows(engine_for(settings))}
    assert [log[i]["state"] for i in (first, second, third)] == ["stored", "stored", "duplicate"]
    assert [log[i]["rows_new"] for i in (first, second, third)] == [20, 10, 0]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{k: v for k, v in ROW.items() if k != "price"}], "missing required column"),
        ([{**ROW, "house_size": "big"}] * 3, "'house_size' is not numeric"),
        ({"not": "a list"}, "list of objects"),
    ],
)
def test_a_malformed_answer_is_rejected_and_stored_rows_are_untouched(settings, rows, message) -> None:
    source = FixedSource({0: good_rows(2), 1: rows})
    pipe = pipeline_with(settings, source)
    store(pipe, fetch(pipe, 0).round_id)
    before = read_table(engine_for(settings), raw_data)
    bad = fetch(pipe, 1).round_id
    with pytest.raises(MalformedBatchError, match=message):
        store(pipe, bad)
    assert read_table(engine_for(settings), raw_data).equals(before)
    rejected = batch_log_rows(engine_for(settings))[-1]
    assert rejected["state"] == "rejected" and message.split()[0].strip("'") in rejected["error"]


def test_a_remote_answer_is_kept_as_received_before_it_is_stored(settings) -> None:
    import json

    from mlops_cli.pipeline.sources import Answer

    body = json.dumps({"group_number": 1, "batch_number": 0, "data": [ROW]}).encode()

    class Remote(FixedSource):
        replayable = False

        def fetch(self, batch: int | None = None) -> Answer:
            return Answer(number=0, rows=json.loads(body)["data"], body=body)

    pipe = pipeline_with(settings, Remote({0: [ROW]}))
    round_id = fetch(pipe, None).round_id
    with engine_for(settings).connect() as conn:
        assert read_body(conn, round_id) == body  # byte for byte, before any step ran
    pipe.answers.clear()  # as after a crash: the step reads the stored body
    store(pipe, round_id)
    assert len(read_table(engine_for(settings), raw_data)) == 1


def test_values_are_stored_normalised(settings) -> None:
    source = FixedSource({0: [{**ROW, "zip_code": 601.0, "city": "AUSTIN", "brokered_by": 12.0}]})
    pipe = pipeline_with(settings, source)
    store(pipe, fetch(pipe, 0).round_id)
    row = read_table(engine_for(settings), raw_data).iloc[0]
    assert (row["zip_code"], row["city"], row["brokered_by"]) == ("00601", "Austin", "12")


@pytest.mark.parametrize(
    "text",
    [
        '{"batch_number": 3, "data": [{"price": 1e5, "bed": 3, "city": "Mayag\\u00fcez", "zip_code": 601.0}]}',
        '{"data": [{"price": NaN, "bed": Infinity}]}',  # not JSON, but what Python servers send
        '{"data": [{"brokered_by": 123456789012345678901234567890}]}',  # beyond 64 bits
        '{"data": [{"street": "\\ud800"}]}',  # a lone surrogate
        '{"data": [{"price": 0.1, "acre_lot": 1.7976931348623157e308, "bath": -0.0, "bed": 5e-324}]}',
        '{"data": [{"price": 1e400}]}',  # out of a double's range: the standard library reads inf
    ],
)
def test_answers_are_parsed_to_the_values_the_standard_library_reads(text: str) -> None:
    import json
    import math

    from mlops_cli.pipeline.ingest import parse_json

    def same(a: object, b: object) -> bool:  # NaN equals NaN; -0.0 keeps its sign
        if isinstance(a, float) and isinstance(b, float):
            return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(map(same, a, b))
        return type(a) is type(b) and a == b

    assert same(parse_json(text.encode()), json.loads(text))
    with pytest.raises(ValueError):
        parse_json(b'{"data": [')


def test_extra_columns_are_kept_in_raw_data_as_received_and_never_in_clean_data(settings) -> None:
    """A source's columns beyond the contract are stored with their row (one JSON object per row,
    none when a row has no extra value), so that later training can use them; dedup and cleaning
    look only at the contract's columns."""
    import json

    rows = good_rows(3)
    rows[0] = {**rows[0], "listing_url": "https://x/1", "agent": {"name": "Ana", "id": 7}}
    rows[1] = {**rows[1], "listing_url": None}
    source = FixedSource({0: rows})
    pipe = pipeline_with(settings, source)
    round_id = fetch(pipe, 0).round_id
    store(pipe, round_id)
    check_schema(pipe, round_id)
    stored = read_table(engine_for(settings), raw_data).sort_values(
        "price", key=lambda p: p.map({r["price"]: i for i, r in enumerate(rows)})
    )
    extras = [None if pd.isna(e) else json.loads(e) for e in stored["extra"]]
    assert extras == [{"agent": {"id": 7, "name": "Ana"}, "listing_url": "https://x/1"}, None, None]
    schema = batch_log_rows(engine_for(settings))[-1]["validation"]["schema"]
    assert schema["extra"] == ["listing_url", "agent"] and any("kept in raw_data" in h for h in schema["handled"])
    source.batches[0] = [{**rows[0], "listing_url": "https://y/1"}]  # the same listing, other extras
    again = fetch(pipe, 0).round_id
    store(pipe, again)
    assert batch_log_rows(engine_for(settings))[-1]["state"] == "duplicate", "dedup ignores extras"
