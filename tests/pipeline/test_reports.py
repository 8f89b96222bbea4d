"""What a run reports: one record per batch number over its answers, skipped numbers apart."""

from __future__ import annotations

from pathlib import Path

from mlops_cli.config import load_settings
from mlops_cli.pipeline.engine import advance, fetch
from mlops_cli.pipeline.reports import all_batches, report_rounds
from mlops_cli.pipeline.sources.base import IndexedSource
from mlops_cli.store.rounds import round_ids
from tests.conftest import good_rows, pipeline_with


class Repeating(IndexedSource):
    """Batch 0 and 1 hold other listings; 3 has none."""

    name = "repeating"

    def numbers(self) -> list[int]:
        return [0, 1, 3]

    def rows(self, batch: int) -> list[dict]:
        return [] if batch == 3 else good_rows(30, start=100 * batch)


def test_each_batch_is_one_record_and_a_repeat_says_why_it_added_nothing(home: Path) -> None:
    pipe = pipeline_with(load_settings(), Repeating())
    for number in (0, 1, 1, 3):  # batch 1 answered twice (a server that repeats itself)
        advance(pipe, fetch(pipe, number).round_id, "cleaned")
    report = all_batches(pipe.engine)
    first, repeat, empty = report.batches
    assert (first.batch, first.state, first.answers, first.rows_received, first.rows_kept) == (0, "cleaned", 1, 30, 30)
    assert (repeat.answers, repeat.state, repeat.rows_received, repeat.rows_kept) == (
        2,
        "duplicate",
        30,
        30,
    )  # a repeat brings no new row
    assert repeat.reason == "the answer repeated rows already stored"
    assert (empty.batch, empty.state) == (3, "empty")
    assert not any(b.retrained for b in report.batches)
    assert report.skipped_batches == [2], "the number the source skipped is listed apart, not as a batch"
    assert report_rounds(pipe.engine, []).batches == []
    only_first = report_rounds(pipe.engine, round_ids(pipe.engine)[:1])
    assert [b.batch for b in only_first.batches] == [0] and only_first.to_dict()["batches"][0]["batch"] == 0
