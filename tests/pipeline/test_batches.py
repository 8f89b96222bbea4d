"""`mlops batches list|show`'s work: the batch log read back by batch number."""

from __future__ import annotations

from pathlib import Path

from mlops_cli.config import load_settings
from mlops_cli.pipeline.batches import record, rounds, summaries
from mlops_cli.pipeline.engine import advance, fetch
from mlops_cli.pipeline.sources import GeneratorSource
from tests.conftest import pipeline_with


def test_a_batch_reads_back_with_its_rounds_and_an_unknown_one_as_none(home: Path) -> None:
    settings = load_settings(generator_batches=2, generator_batch_rows=60)
    pipe = pipeline_with(settings, GeneratorSource(settings))
    for number in (0, 1):
        advance(pipe, fetch(pipe, number).round_id, "cleaned")
    advance(pipe, fetch(pipe, 1).round_id, "cleaned")  # batch 1 answered twice
    assert [b.batch for b in summaries(settings).batches] == [0, 1]
    found, its_rounds = record(settings, 1)
    assert found.answers == 2 and [r["state"] for r in its_rounds] == ["cleaned", "duplicate"]
    assert its_rounds == rounds(settings, 1) and its_rounds[0]["id"] < its_rounds[1]["id"]
    assert record(settings, 7) == (None, [])
