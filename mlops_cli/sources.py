"""Data sources behind the data API contract: the built-in generator, a CSV/Parquet file,
or a remote data API. Every source hands out one batch at a time.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlops_cli.errors import ConfigError, SourceError, SourceExhausted

if TYPE_CHECKING:
    import pandas as pd

    from mlops_cli.settings import Settings


@dataclass
class Batch:
    """One batch as received: its number and the raw rows (JSON objects)."""

    number: int
    rows: list[dict[str, Any]]
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class DataSource(Protocol):
    name: str

    def fetch(self, batch: int | None = None) -> Batch:
        """Batch ``batch`` (or the next one). Raises SourceExhausted after the last."""

    def restart(self) -> None:
        """Start again at batch 0."""


def frame_to_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: NaN → None, numpy scalars → Python."""
    return json.loads(frame.to_json(orient="records", date_format="iso"))


class IndexedSource:
    """A source with random access to its batches; the cursor gives 'the next one'."""

    name = "indexed"

    def __init__(self) -> None:
        self.cursor = 0

    def batch_count(self) -> int:
        raise NotImplementedError

    def rows(self, batch: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def fetch(self, batch: int | None = None) -> Batch:
        number = self.cursor if batch is None else batch
        if number < 0:
            raise SourceError(f"batch numbers start at 0, got {number}")
        if number >= self.batch_count():
            raise SourceExhausted(f"{self.name} has {self.batch_count()} batches (0-{self.batch_count() - 1})")
        self.cursor = number + 1
        return Batch(number, self.rows(number), self.name)

    def restart(self) -> None:
        self.cursor = 0


class GeneratorSource(IndexedSource):
    def __init__(self, settings: Settings) -> None:
        from mlops_cli.generator import GeneratorConfig

        super().__init__()
        self.config = GeneratorConfig(
            seed=settings.generator_seed,
            batches=settings.generator_batches,
            batch_rows=settings.generator_batch_rows,
            price_drift=settings.generator_price_drift,
            state_drift=settings.generator_state_drift,
        )
        self.name = f"generator(seed={self.config.seed})"

    def batch_count(self) -> int:
        return self.config.batches

    def rows(self, batch: int) -> list[dict[str, Any]]:
        from mlops_cli.generator import generate_batch

        return frame_to_rows(generate_batch(batch, self.config))


class FileSource(IndexedSource):
    """A CSV or Parquet file cut into batches: by its ``batch`` column, else in equal chunks."""

    def __init__(self, path: Path, batches: int, batch_rows: int) -> None:
        super().__init__()
        if not path.exists():
            raise ConfigError(f"data file not found: {path}", hint="MLOPS_DATA_SOURCE=csv:PATH")
        self.path = path
        self.name = f"file({path.name})"
        self._frame = self._read()
        self._batch_rows = batch_rows
        if "batch" in self._frame.columns:
            self._groups = sorted(int(b) for b in self._frame["batch"].dropna().unique())
        else:
            self._groups = None
            self._chunk = max(1, -(-len(self._frame) // max(1, min(batches, len(self._frame) or 1))))

    def _read(self) -> pd.DataFrame:
        import pandas as pd

        try:
            if self.path.suffix.lower() in (".parquet", ".pq"):
                return pd.read_parquet(self.path)
            return pd.read_csv(self.path, dtype={"zip_code": str, "brokered_by": str, "street": str})
        except Exception as exc:  # pandas raises many types for unreadable files
            raise ConfigError(f"cannot read data file {self.path}: {exc}") from None

    def batch_count(self) -> int:
        if self._groups is not None:
            return len(self._groups)
        return -(-len(self._frame) // self._chunk) if len(self._frame) else 0

    def rows(self, batch: int) -> list[dict[str, Any]]:
        if self._groups is not None:
            part = self._frame[self._frame["batch"] == self._groups[batch]].drop(columns="batch")
        else:
            part = self._frame.iloc[batch * self._chunk : (batch + 1) * self._chunk]
        return frame_to_rows(part)


class HttpSource:
    """A remote data API with the course contract; retries 5xx, timeouts and bad JSON."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url.rstrip("/")
        self.name = self.url
        self.params = {"group_number": settings.data_group, "day": settings.data_day}
        self.timeout = settings.data_timeout
        self.retries = settings.data_retries
        self.backoff = settings.data_backoff

    def _get(self, path: str) -> Any:
        import httpx

        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = httpx.get(f"{self.url}{path}", params=self.params, timeout=self.timeout)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if response.status_code >= 500:
                problem = f"HTTP {response.status_code}"
                continue
            if response.status_code == 400 and path.startswith("/data"):
                raise SourceExhausted(_detail(response) or "the data API has no more batches")
            if response.status_code >= 400:
                raise SourceError(
                    f"data API {self.url}{path} answered HTTP {response.status_code}: {_detail(response)}",
                    hint="check MLOPS_DATA_SOURCE, MLOPS_DATA_GROUP and MLOPS_DATA_DAY",
                )
            try:
                return response.json()
            except ValueError:
                problem = "malformed JSON"
                continue
        raise SourceError(
            f"data API {self.url}{path} failed after {self.retries + 1} attempts ({problem})",
            hint="is the data API up? `mlops data serve` starts the built-in one",
        )

    def fetch(self, batch: int | None = None) -> Batch:
        body = self._get("/data")
        if not isinstance(body, dict) or "data" not in body or "batch_number" not in body:
            raise SourceError(f"data API {self.url} answered without 'batch_number' and 'data'")
        try:
            number = int(body["batch_number"])
        except (TypeError, ValueError):
            raise SourceError(f"data API {self.url} sent a non-integer batch_number") from None
        if batch is not None and number != batch:
            raise SourceError(
                f"data API {self.url} served batch {number}, not batch {batch}: it hands out batches in order",
                hint="`mlops data reset` starts it again at batch 0",
            )
        return Batch(number, body["data"], self.name, {k: v for k, v in body.items() if k != "data"})

    def restart(self) -> None:
        self._get("/restart_data_generation")


def _detail(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)[:200]


def open_source(settings: Settings) -> DataSource:
    """The source named by ``MLOPS_DATA_SOURCE``."""
    spec = settings.data_source
    if spec == "generator":
        return GeneratorSource(settings)
    if spec.startswith("csv:"):
        return FileSource(Path(spec[4:]).expanduser(), settings.generator_batches, settings.generator_batch_rows)
    return HttpSource(spec, settings)
