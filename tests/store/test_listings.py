"""The listings' queries on every data DB: the places the UI offers (distinct in the database),
the training and test rows up to a round, a round's rows replaced whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_cli.config import load_settings
from mlops_cli.schema import CLEAN_COLUMNS
from mlops_cli.store import listings
from mlops_cli.store.db import engine_for
from mlops_cli.store.frames import row_hashes


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def engine(request: pytest.FixtureRequest, home: Path):  # noqa: ANN201
    if request.param == "sqlite":
        return engine_for(load_settings())
    request.applymarker(pytest.mark.external_db)
    return engine_for(load_settings(data_db_url=request.getfixturevalue(f"{request.param}_url")))


def clean_rows(round_id: int, places: list[tuple[str | None, str | None, str | None]], split: str) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "price": np.arange(len(places), dtype=float) * 1000 + 100_000 + round_id,
            "state": [p[0] for p in places],
            "city": [p[1] for p in places],
            "zip_code": [p[2] for p in places],
            "house_size": 1500.0,
            "bed": 3.0,
            "bath": 2.0,
            "acre_lot": 0.2,
        }
    )[CLEAN_COLUMNS]
    return frame.assign(batch=round_id, round=round_id, split=split, row_hash=row_hashes(frame))


def test_places_are_distinct_complete_and_sorted_and_rows_follow_their_round(engine) -> None:  # noqa: ANN001
    austin, dallas, ponce = (
        ("Texas", "Austin", "75003"),
        ("Texas", "Dallas", "75201"),
        ("Puerto Rico", "Ponce", "00716"),
    )
    with engine.begin() as conn:
        listings.replace_clean_rows(conn, 1, clean_rows(1, [austin, austin, dallas, ("Texas", None, "75002")], "train"))
        listings.replace_clean_rows(conn, 2, clean_rows(2, [ponce, austin], "test"))
        listings.replace_clean_rows(conn, 3, clean_rows(3, [dallas], "train"))
    assert listings.locations(engine) == [ponce, austin, dallas], "a place without a city is not offered"
    assert len(listings.training_rows(engine, 1)) == 4 and len(listings.training_rows(engine, 3)) == 5
    assert list(listings.test_rows(engine)["round"]) == [2, 2] and listings.test_rows(engine, 1).empty
    assert sorted(listings.test_hashes(engine)) == sorted(listings.test_rows(engine)["row_hash"])
    with engine.begin() as conn:  # a round cleaned again replaces its rows, never adds to them
        listings.replace_clean_rows(conn, 3, clean_rows(3, [ponce], "train"))
        assert len(listings.clean_hashes(conn, besides=1)) == 3
        assert list(listings.clean_hashes(conn, besides=1, after=2)["round"]) == [3]
    assert listings.locations(engine) == [ponce, austin, dallas]


def test_raw_rows_keep_their_extra_columns_as_json_and_read_back_as_written(engine) -> None:  # noqa: ANN001
    """The COPY path (PostgreSQL), executemany (SQLite) and PyMySQL batches all keep the extra
    values' JSON text whole (quotes, commas, newlines and non-ASCII included)."""
    import json

    from mlops_cli.pipeline.ingest import normalised_rows

    listing = {"state": "Texas", "zip_code": "75003", "bed": 3, "bath": 2, "acre_lot": 0.2, "house_size": 1500}
    rows = [
        {**listing, "price": 1e5, "city": "Austin", "note": 'a "quoted", two-line\ntext — ñ', "n": 3},
        {**listing, "price": 2e5, "city": "Dallas"},
    ]
    frame = normalised_rows(rows, "test").assign(batch=0, round=1)
    with engine.begin() as conn:
        written = listings.add_raw_rows(conn, frame)
        read = listings.raw_rows_of_round(conn, 0, 1)
    assert json.loads(read["extra"][0]) == {"n": 3, "note": rows[0]["note"]} and pd.isna(read["extra"][1])
    pd.testing.assert_frame_equal(written, read)
