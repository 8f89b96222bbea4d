from pathlib import Path

import pytest

from mlops_cli.clean import clean_and_split
from mlops_cli.errors import MlopsError
from mlops_cli.ingest import ingest_batch
from mlops_cli.settings import load_settings
from mlops_cli.storage import clean_data, engine_for, read_table
from tests.test_ingest import ROW, FixedSource


@pytest.fixture
def settings(home: Path):  # noqa: ANN201
    return load_settings()


def good_rows(n: int, start: int = 0) -> list[dict]:
    return [{**ROW, "price": 200_000 + 1_000 * i, "house_size": 1000 + i} for i in range(start, start + n)]


def test_invalid_rows_are_dropped_and_counted_by_reason(settings) -> None:  # noqa: ANN001
    bad = [
        {**ROW, "price": None},
        {**ROW, "price": 0},
        {**ROW, "price": -5},
        {**ROW, "house_size": 3},
        {**ROW, "bed": 99},
        {**ROW, "state": None},
    ]
    rows = good_rows(40) + bad + [good_rows(1)[0]]  # the last one duplicates the first
    engine = engine_for(settings)
    ingest_batch(settings, FixedSource({0: rows}), 0, engine)
    result = clean_and_split(settings, 0, engine)
    assert result.rows_received == 47 and result.rows_kept == 40
    assert result.dropped == {
        "duplicate": 1,
        "impossible_bed": 1,
        "impossible_size": 1,
        "missing_price": 1,
        "missing_state": 1,
        "non_positive_price": 2,
    }
    stored = read_table(engine, clean_data)
    assert len(stored) == 40
    assert not {"brokered_by", "street", "status", "prev_sold_date"} & set(stored.columns)


def test_duplicates_of_earlier_batches_are_dropped(settings) -> None:  # noqa: ANN001
    engine = engine_for(settings)
    source = FixedSource({0: good_rows(30), 1: good_rows(10, start=25)})
    for b in (0, 1):
        ingest_batch(settings, source, b, engine)
        result = clean_and_split(settings, b, engine)
    assert result.dropped == {"duplicate": 5} and result.rows_kept == 5


def test_split_is_85_15_stratified_and_reproducible(settings) -> None:  # noqa: ANN001
    engine = engine_for(settings)
    ingest_batch(settings, FixedSource({0: good_rows(400)}), 0, engine)
    first = clean_and_split(settings, 0, engine)
    split_a = read_table(engine, clean_data).sort_values("price")["split"].tolist()
    clean_and_split(settings, 0, engine)
    split_b = read_table(engine, clean_data).sort_values("price")["split"].tolist()
    assert split_a == split_b
    assert (first.rows_train, first.rows_test) == (340, 60)
    stored = read_table(engine, clean_data).sort_values("price").reset_index(drop=True)
    quartile_tests = stored.groupby(stored.index // 100)["split"].apply(lambda s: (s == "test").sum())
    assert quartile_tests.tolist() == [15, 15, 15, 15]


def test_cleaning_a_batch_never_ingested_is_a_clear_error(settings) -> None:  # noqa: ANN001
    with pytest.raises(MlopsError, match="batch 3 has not been ingested"):
        clean_and_split(settings, 3)
