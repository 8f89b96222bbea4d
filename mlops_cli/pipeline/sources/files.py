"""Replayable sources in this process: the built-in generator and a CSV/Parquet file."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import ConfigError, MalformedBatchError
from mlops_cli.pipeline.sources.base import IndexedSource, frame_columns, frame_json, frame_to_rows

if TYPE_CHECKING:
    import pandas as pd

    from mlops_cli.config import Settings


class FrameSource(IndexedSource):
    """An in-process source whose batches are frames (``_part``): rows as a data API client would
    read them, columns for this process, JSON as `mlops data serve` sends it."""

    def _part(self, batch: int) -> pd.DataFrame:
        raise NotImplementedError

    def rows(self, batch: int) -> list[dict[str, Any]]:
        return frame_to_rows(self._part(batch))

    def columns(self, batch: int) -> pd.DataFrame:
        return frame_columns(self._part(batch))

    def batch_json(self, batch: int) -> tuple[bytes, int]:
        part = self._part(batch)
        return frame_json(part), len(part)


class GeneratorSource(FrameSource):
    kind = "generator"

    def __init__(self, settings: Settings) -> None:
        from mlops_cli.pipeline.generator import GeneratorConfig

        self.config = GeneratorConfig(
            seed=settings.generator_seed,
            batches=settings.generator_batches,
            batch_rows=settings.generator_batch_rows,
            price_drift=settings.generator_price_drift,
            state_drift=settings.generator_state_drift,
        )
        self.name = f"generator(seed={self.config.seed})"

    def identity(self) -> str:
        c = self.config
        return (
            f"generator seed={c.seed} batches={c.batches} rows={c.batch_rows} "
            f"price_drift={c.price_drift:g} state_drift={c.state_drift:g}"
        )

    def numbers(self) -> list[int]:
        return list(range(self.config.batches))

    def _part(self, batch: int) -> pd.DataFrame:
        from mlops_cli.pipeline.generator import generate_batch

        return generate_batch(batch, self.config)


# Rows read to check a file's header and types before the whole file is read.
FILE_PROBE_ROWS = 1000


class FileSource(FrameSource):
    """A CSV or Parquet file cut into batches: by its ``batch`` column, else in equal chunks.

    The header and the first rows are checked before the file is read whole; the ``batch``
    column must hold non-negative integers, and its gaps are kept (the engine reports them).
    """

    kind = "file"

    def __init__(self, path: Path, batches: int, batch_rows: int = 0) -> None:
        if not path.exists():
            raise ConfigError(f"data file not found: {path}", hint="MLOPS_DATA_SOURCE=csv:PATH")
        self.path = path
        self.name = f"file({path.name})"
        self._batches = batches
        self._probe()

    def identity(self) -> str:
        return f"file {self.path.resolve()}"

    @property
    def _is_parquet(self) -> bool:
        return self.path.suffix.lower() in (".parquet", ".pq")

    def _read(self, nrows: int | None = None) -> pd.DataFrame:
        import pandas as pd

        try:
            if self._is_parquet:
                if nrows is not None:
                    import pyarrow.parquet as pq

                    batch = next(pq.ParquetFile(self.path).iter_batches(batch_size=nrows), None)
                    return batch.to_pandas() if batch is not None else pd.DataFrame()
                return pd.read_parquet(self.path)
            text = {"zip_code": str, "brokered_by": str, "street": str, "batch": str}
            return pd.read_csv(self.path, dtype=text, nrows=nrows)
        except Exception as exc:  # pandas and Arrow raise many types for unreadable files
            raise ConfigError(f"cannot read data file {self.path}: {type(exc).__name__}: {exc}") from None

    def _probe(self) -> None:
        """Fail on a wrong header, type or batch value before reading the whole file."""
        from mlops_cli.schema import normalise

        head = self._read(FILE_PROBE_ROWS)
        try:
            normalise(head.drop(columns="batch", errors="ignore"), what=f"data file {self.path}")
        except MalformedBatchError as exc:
            raise ConfigError(exc.message, hint="a realtor listings CSV/Parquet file is expected") from None
        if "batch" in head.columns:
            self._batch_values(head)

    def _batch_values(self, frame: pd.DataFrame) -> pd.Series:
        """The ``batch`` column as integers; a clear error naming the first bad row."""
        import numpy as np
        import pandas as pd

        raw = frame["batch"]
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna() | (values < 0) | (values != np.floor(values))
        if bad.any():
            first = int(np.flatnonzero(bad.to_numpy())[0])
            line = f"line {first + 2}" if not self._is_parquet else f"row {first + 1}"
            raise ConfigError(
                f"data file {self.path}, {line}: batch {raw.iloc[first]!r} is not a non-negative integer",
                hint="the batch column must hold whole numbers 0, 1, 2, … (or drop it to cut the file in equal chunks)",
            )
        return values.astype("int64")

    @cached_property
    def _frame(self) -> pd.DataFrame:
        frame = self._read()
        if "batch" in frame.columns:
            frame["batch"] = self._batch_values(frame)
        return frame

    @cached_property
    def _chunk(self) -> int:
        rows = len(self._frame)
        return max(1, -(-rows // max(1, min(self._batches, rows or 1))))

    def numbers(self) -> list[int]:
        if "batch" in self._frame.columns:
            return sorted(int(b) for b in self._frame["batch"].unique())
        return list(range(-(-len(self._frame) // self._chunk))) if len(self._frame) else []

    def _part(self, batch: int) -> pd.DataFrame:
        if "batch" in self._frame.columns:
            return self._frame[self._frame["batch"] == batch].drop(columns="batch")
        return self._frame.iloc[batch * self._chunk : (batch + 1) * self._chunk]
