"""What every data source is: a source hands out one *answer* at a time (a batch number and
rows). Local sources are *replayable* (:class:`IndexedSource`: batch N can be read again at any
time, so the engine asks them for a batch by number); and frames as a data API's JSON carries them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mlops_cli.errors import BatchNotFound, SourceExhausted

if TYPE_CHECKING:
    import pandas as pd


@dataclass(kw_only=True)
class Answer:
    """One answer of a source: the batch number it names and its rows (not yet validated):
    JSON objects, or for an in-process source asked for columns, a frame of the same values.

    ``body`` holds the bytes as received for sources that cannot replay an answer; ``seconds``
    how long the server took to answer it (request sent → whole body received).
    """

    number: int
    rows: Any
    body: bytes | None = None
    seconds: float | None = None


class DataSource(Protocol):
    name: str
    kind: str
    replayable: bool

    def identity(self) -> str:
        """What the dataset remembers about its source (kind and identity)."""

    def fetch(self, batch: int | None = None) -> Answer:
        """Batch ``batch`` (replayable sources) or the next answer. SourceExhausted after the last."""

    def restart(self) -> None:
        """Start again at the first batch."""


def frame_json(frame: pd.DataFrame) -> bytes:
    """The frame's rows as a JSON array of objects (NaN → null), as a data API sends them."""
    return frame.to_json(orient="records", date_format="iso").encode()


def frame_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame a client of :func:`frame_json` builds from its rows (``DataFrame.from_records``
    of the parsed objects), built column by column instead of through a dict per row: floats
    go through the same JSON text (to_json's rounding), text and integers are taken as they
    are, and a column of mixed values takes the JSON route and from_records' own inference.
    ``tests/pipeline/sources/`` holds it equal to the rows route, frame for frame."""
    import numpy as np
    import pandas as pd

    from mlops_cli.pipeline.ingest import parse_json

    columns: dict[str, Any] = {}
    for name in frame.columns:
        values = frame[name].reset_index(drop=True)
        dtype = values.dtype
        if dtype == np.float64:
            parsed = parse_json(values.to_json(orient="values", double_precision=10))
            columns[name] = pd.Series(parsed, dtype="float64")
        elif dtype == np.int64:
            columns[name] = values
        elif (isinstance(dtype, pd.StringDtype) or dtype == np.dtype(object)) and _only_text(values):
            present = values.notna()
            text = values.astype(object).where(present, None)
            columns[name] = text.astype("str") if present.any() else text
        else:  # mixed (a zip code as a number here, as text there), dates, booleans, categories
            parsed = parse_json(values.to_json(orient="values", date_format="iso", double_precision=10))
            columns[name] = pd.DataFrame.from_records([(v,) for v in parsed], columns=[name])[name]
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))


def _only_text(values: pd.Series) -> bool:
    """Every present value is a str (what JSON gives back unchanged)."""
    import pandas as pd

    if isinstance(values.dtype, pd.StringDtype):
        return True
    present = values[values.notna()]
    return bool(present.map(type).eq(str).all()) if len(present) else True


def frame_to_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: NaN → None, numpy scalars → Python (exactly what a client of
    :func:`frame_json` reads)."""
    from mlops_cli.pipeline.ingest import parse_json

    return parse_json(frame_json(frame))


class IndexedSource:
    """A replayable source: its batches are known by number and can be read any number of times."""

    name = "indexed"
    kind = "indexed"
    replayable = True

    def numbers(self) -> list[int]:
        """Every batch number, in order."""
        raise NotImplementedError

    def rows(self, batch: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def batch_json(self, batch: int) -> tuple[bytes, int]:
        """The rows of ``batch`` as a JSON array (parsing to exactly ``rows(batch)``) and their
        count: what a data API sends, without building a Python object per value first."""
        rows = self.rows(batch)
        return json.dumps(rows, allow_nan=False).encode(), len(rows)

    def identity(self) -> str:
        return self.name

    def columns(self, batch: int) -> list[dict[str, Any]] | pd.DataFrame:
        """The rows of ``batch`` for this process: a frame of the values ``rows`` would give
        where the source has one (no dict per row), else ``rows`` itself."""
        return self.rows(batch)

    def fetch(self, batch: int | None = None, *, columnar: bool = False) -> Answer:
        """Batch ``batch`` (the first if None); ``columnar``: its rows as :meth:`columns`."""
        numbers = self.numbers()
        if batch is None:
            batch = numbers[0] if numbers else 0
        if batch not in numbers:
            if not numbers:
                raise SourceExhausted(f"{self.name} has no batches")
            raise BatchNotFound(
                f"{self.name} has no batch {batch} (its batches: {_ranges(numbers)})",
                hint="`mlops train --all` processes every batch not done yet",
            )
        return Answer(number=batch, rows=self.columns(batch) if columnar else self.rows(batch))

    def restart(self) -> None:
        """Nothing to do: which batch comes next is the data DB's record, not the source's."""


def _ranges(numbers: list[int]) -> str:
    """[0,1,2,5,7,8] → '0-2, 5, 7-8'."""
    parts: list[str] = []
    start = prev = None
    for n in [*numbers, None]:
        if n is not None and prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = n
    return ", ".join(parts)
