from pathlib import Path

import pytest

from mlops_cli.errors import MalformedBatchError
from mlops_cli.ingest import ingest_batch
from mlops_cli.settings import load_settings
from mlops_cli.sources import Batch, GeneratorSource
from mlops_cli.storage import batch_log_rows, count_rows, engine_for, raw_data, read_table
from tests.conftest import ROW


class FixedSource:
    """A source that serves the batches it was given (to inject malformed ones)."""

    name = "fixed"

    def __init__(self, batches: dict[int, object]) -> None:
        self.batches = batches

    def fetch(self, batch: int | None = None) -> Batch:
        return Batch(batch, self.batches[batch], self.name)  # type: ignore[arg-type]

    def restart(self) -> None:
        pass


@pytest.fixture
def settings(home: Path):  # noqa: ANN201
    return load_settings(generator_batches=4, generator_batch_rows=200)


def test_rerunning_a_batch_keeps_one_copy(settings) -> None:  # noqa: ANN001
    engine = engine_for(settings)
    source = GeneratorSource(settings)
    for number in (0, 1, 1, 2, 1):
        ingest_batch(settings, source, number, engine)
    per_batch = read_table(engine, raw_data).groupby("batch").size().to_dict()
    expected = {b: len(source.rows(b)) for b in (0, 1, 2)}
    assert per_batch == expected
    assert [row["batch"] for row in batch_log_rows(engine)] == [0, 1, 2]


def test_batch_zero_starts_a_fresh_dataset(settings) -> None:  # noqa: ANN001
    engine = engine_for(settings)
    source = GeneratorSource(settings)
    for number in (0, 1, 2):
        ingest_batch(settings, source, number, engine)
    ingest_batch(settings, source, 0, engine)
    assert set(read_table(engine, raw_data)["batch"]) == {0}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{k: v for k, v in ROW.items() if k != "price"}], "missing required column"),
        ([{**ROW, "house_size": "big"}] * 3, "'house_size' is not numeric"),
        ({"not": "a list"}, "list of objects"),
    ],
)
def test_malformed_batch_is_rejected_and_stored_data_untouched(settings, rows, message) -> None:  # noqa: ANN001
    engine = engine_for(settings)
    good = FixedSource({0: [ROW, {**ROW, "price": 300000}], 1: [ROW], 2: rows})
    ingest_batch(settings, good, 0, engine)
    ingest_batch(settings, good, 1, engine)
    before = read_table(engine, raw_data)
    with pytest.raises(MalformedBatchError, match=message):
        ingest_batch(settings, good, 2, engine)
    good.batches[1] = rows  # a malformed re-run of a stored batch must not erase it either
    with pytest.raises(MalformedBatchError):
        ingest_batch(settings, good, 1, engine)
    after = read_table(engine, raw_data)
    assert after.equals(before)
    assert [row["batch"] for row in batch_log_rows(engine)] == [0, 1]


def test_values_are_stored_normalised(settings) -> None:  # noqa: ANN001
    engine = engine_for(settings)
    ingest_batch(
        settings, FixedSource({0: [{**ROW, "zip_code": 601.0, "city": "AUSTIN", "brokered_by": 12.0}]}), 0, engine
    )
    row = read_table(engine, raw_data).iloc[0]
    assert (row["zip_code"], row["city"], row["brokered_by"]) == ("00601", "Austin", "12")
    assert count_rows(engine, raw_data) == 1
