"""Step 2: invalid rows and duplicates dropped with a counted reason; a reproducible stratified split."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_cli.config import load_settings
from mlops_cli.pipeline.clean import clean_rows
from mlops_cli.pipeline.engine import advance, check_quality, check_schema, clean, fetch, store
from mlops_cli.pipeline.ingest import normalised_rows
from mlops_cli.store.db import engine_for
from mlops_cli.store.frames import read_table
from mlops_cli.store.rounds import batch_log_rows
from mlops_cli.store.tables import clean_data, raw_data
from tests.conftest import ROW, FixedSource, good_rows, pipeline_with


def cleaned(rows: list[dict], earlier: pd.DataFrame | None = None, seed: int = 42):
    seen = np.array([], dtype=np.int64) if earlier is None else earlier["row_hash"].to_numpy()
    return clean_rows(normalised_rows(rows, "test"), seen, test_size=0.15, seed=seed)


def test_invalid_rows_are_dropped_and_counted_by_reason() -> None:
    bad = [
        {**ROW, "price": None},
        {**ROW, "price": 0},
        {**ROW, "price": -5},
        {**ROW, "house_size": 3},
        {**ROW, "bed": 99},
        {**ROW, "state": None},
        {**ROW, "city": "X" * 65},
    ]
    result = cleaned(good_rows(40) + bad + [good_rows(1)[0]])  # the last one duplicates the first
    assert result.rows_received == 48 and result.rows_kept == 40
    assert result.dropped == {
        "duplicate": 1,
        "impossible_bed": 1,
        "impossible_size": 1,
        "missing_price": 1,
        "missing_state": 1,
        "non_positive_price": 2,
        "text_too_long": 1,
    }
    assert not {"brokered_by", "street", "status", "prev_sold_date"} & set(result.kept.columns)


def test_duplicates_of_earlier_rows_are_dropped() -> None:
    earlier = cleaned(good_rows(30)).kept
    result = cleaned(good_rows(10, start=25), earlier)
    assert result.dropped == {"duplicate": 5} and result.rows_kept == 5


def test_split_is_85_15_stratified_and_reproducible() -> None:
    first, again = cleaned(good_rows(400)), cleaned(good_rows(400))
    assert first.kept["split"].tolist() == again.kept["split"].tolist()
    assert (first.rows_train, first.rows_test) == (340, 60)
    by_price = first.kept.sort_values("price").reset_index(drop=True)
    assert by_price.groupby(by_price.index // 100)["split"].apply(lambda s: (s == "test").sum()).tolist() == [15] * 4


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.external_db)])
def test_a_city_longer_than_the_column_is_stored_raw_and_dropped_in_cleaning(
    home: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    settings = load_settings(data_db_url=url)
    long_city = "Villa " + "Grande " * 20
    pipe = pipeline_with(settings, FixedSource({0: [*good_rows(20), {**ROW, "city": long_city}]}))
    round_id = fetch(pipe, 0).round_id
    advance(pipe, round_id, "cleaned")
    engine = engine_for(settings)
    assert long_city.strip() in set(read_table(engine, raw_data)["city"])  # whole, not truncated
    assert len(read_table(engine, clean_data)) == 20
    assert batch_log_rows(engine)[-1]["dropped"] == {"text_too_long": 1}


@pytest.mark.parametrize("forget", ["stored", "checked"])
def test_cleaning_takes_the_rows_just_stored_from_memory_and_a_resumed_round_from_the_db(
    home: Path, forget: str
) -> None:
    """In one run, the quality check uses the rows store just wrote and clean the check's verdict
    (no second read of a 200k-row batch); a round stored or checked by another process (a crash,
    an Airflow task) is read from raw_data. All clean the same rows."""
    from mlops_cli.pipeline.engine import open_pipeline
    from tests.conftest import executed

    def cleaned(db: str, forget: str | None) -> tuple[list[str], pd.DataFrame]:
        settings = load_settings(generator_batches=1, generator_batch_rows=400, data_db_url=f"sqlite:///{db}")
        pipe = open_pipeline(settings, reload_api=False)
        round_id = fetch(pipe).round_id
        store(pipe, round_id)
        if forget == "stored":  # as after kill -9 between the steps: a new process has nothing in memory
            pipe.stored.clear()
        check_schema(pipe, round_id)
        with executed(pipe.engine) as statements:
            check_quality(pipe, round_id)
            if forget == "checked":
                pipe.checked.clear()
            clean(pipe, round_id)
        reads = [s for s in statements if s.startswith("SELECT") and "FROM raw_data" in s]
        return reads, read_table(pipe.engine, clean_data, clean_data.c.round == round_id)

    reads, kept = cleaned(str(home.parent / "one-run.db"), forget=None)
    assert not reads, reads
    reads, kept_again = cleaned(str(home.parent / "resumed.db"), forget=forget)
    assert len(reads) == 1, "a round stored or checked by another process is read back once"
    assert len(kept) > 300
    pd.testing.assert_frame_equal(kept, kept_again, check_exact=True)
