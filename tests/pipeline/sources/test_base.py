"""What every replayable source does: batches by number, a clear error for a missing one, and
frames carried the way a data API's JSON carries them."""

import math

import pandas as pd
import pytest

from mlops_cli.errors import BatchNotFound, SourceExhausted
from mlops_cli.pipeline.sources.base import IndexedSource, frame_columns, frame_json, frame_to_rows


class Numbered(IndexedSource):
    name = "numbered"

    def __init__(self, numbers: list[int]) -> None:
        self._numbers = numbers

    def numbers(self) -> list[int]:
        return self._numbers

    def rows(self, batch: int) -> list[dict]:
        return [{"batch": batch, "price": 1.5 * batch}]


def test_a_replayable_source_answers_any_batch_again_and_names_its_batches_when_one_is_missing() -> None:
    source = Numbered([0, 1, 2, 5, 7, 8])
    assert source.fetch().number == 0 and source.fetch(5).rows == source.fetch(5).rows == [{"batch": 5, "price": 7.5}]
    with pytest.raises(BatchNotFound, match=r"no batch 4 \(its batches: 0-2, 5, 7-8\)"):
        source.fetch(4)
    with pytest.raises(SourceExhausted):
        Numbered([]).fetch()
    body, count = source.batch_json(7)
    assert (body, count) == (b'[{"batch": 7, "price": 10.5}]', 1)


def test_a_frame_goes_as_json_and_comes_back_the_same_by_either_route() -> None:
    frame = pd.DataFrame(
        {"price": [1.0, math.nan, 0.1234567890123], "city": ["a", None, "ü"], "beds": [1, 2, 3], "zip": ["1", 2, None]}
    )
    rows = frame_to_rows(frame)
    assert rows[1] == {"price": None, "city": None, "beds": 2, "zip": 2}  # NaN is null, numpy ints are ints
    assert frame_json(frame).startswith(b'[{"price":1.0,"city":"a","beds":1,"zip":"1"}')
    pd.testing.assert_frame_equal(frame_columns(frame), pd.DataFrame.from_records(rows), check_exact=True)
