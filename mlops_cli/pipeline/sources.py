"""Data sources behind the data API contract: the built-in generator, a CSV/Parquet file,
or a remote data API. Every source hands out one *answer* at a time: a batch number and rows.

Local sources (generator, file) are *replayable*: batch N can be read again at any time, so the
engine asks them for a batch by number. A remote data API is not: every call may advance its
cursor, so the engine stores each answer's body before doing anything else with it.
"""

from __future__ import annotations

import json
import time
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlops_cli.errors import BatchNotFound, ConfigError, MalformedBatchError, SourceError, SourceExhausted

if TYPE_CHECKING:
    import pandas as pd

    from mlops_cli.config import Settings

# What a data API says when every batch has been served: the course server's words (with or
# without accents) or ours. Any other 400 is an error showing the server's detail.
END_OF_DATA_PHRASES = ("ya se recolecto toda la informacion minima necesaria", "every batch has been served")


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
    ``tests/pipeline/test_sources.py`` holds it equal to the rows route, frame for frame."""
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


class RequestFailed(Exception):
    """One HTTP attempt that may succeed if tried again (5xx, timeout, cut body, bad JSON)."""


def is_end_of_data(detail: str) -> bool:
    """The server's "every batch has been served" (Spanish with or without accents, or ours)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", detail) if not unicodedata.combining(c)).lower()
    return any(phrase in plain for phrase in END_OF_DATA_PHRASES)


class HttpSource:
    """A remote data API with the course contract.

    Each request has one deadline (connect + whole body) and a size cap; 5xx, timeouts and
    malformed bodies are retried with backoff (every call may advance the server: the engine
    reports the gaps this can cause). A 400 is the end of the data only when the server says
    so; any other 400 is an error with the server's detail.
    """

    kind = "data-api"
    replayable = False

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url.rstrip("/")
        self.name = self.url
        self.params: dict[str, Any] = {"group_number": settings.data_group}
        if settings.data_day:
            self.params["day"] = settings.data_day
        self.deadline = settings.data_timeout
        self.max_bytes = settings.data_max_bytes
        self.retries = settings.data_retries
        self.backoff = settings.data_backoff

    def identity(self) -> str:
        day = f" day={self.params['day']}" if "day" in self.params else ""
        return f"data-api {self.url} group={self.params['group_number']}{day}"

    def _attempt(self, client: Any, path: str) -> tuple[int, bytes]:
        """One request, bounded by the deadline (connect + whole body) and the size cap.

        The request runs in a helper thread so that a server that stalls mid-body cannot hold
        the caller past the deadline (a read timeout alone restarts with every byte).
        """
        import threading

        deadline = time.monotonic() + self.deadline
        outcome: dict[str, Any] = {}
        finished = threading.Event()

        def work() -> None:
            try:
                outcome["answer"] = self._read(client, path, deadline)
            except BaseException as exc:  # handed to the caller below
                outcome["error"] = exc
            finally:
                finished.set()

        threading.Thread(target=work, name="data-api-request", daemon=True).start()
        if not finished.wait(self.deadline):
            raise RequestFailed(f"no whole answer within {self.deadline:g}s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["answer"]

    def _read(self, client: Any, path: str, deadline: float) -> tuple[int, bytes]:
        import httpx

        try:
            with client.stream("GET", f"{self.url}{path}", params=self.params) as response:
                size, chunks = 0, []
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise SourceError(
                            f"data API {self.url}{path} sent more than {self.max_bytes:,} bytes",
                            hint="raise MLOPS_DATA_MAX_BYTES if such answers are expected",
                        )
                    if time.monotonic() > deadline:
                        raise RequestFailed(f"no whole answer within {self.deadline:g}s")
                    chunks.append(chunk)
                return response.status_code, b"".join(chunks)
        except httpx.HTTPError as exc:
            raise RequestFailed(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None

    def _get(self, path: str) -> tuple[bytes, Any, float]:
        """The answer's body, its JSON document and the seconds the successful attempt took."""
        import httpx

        from mlops_cli.pipeline.ingest import parse_json

        # The deadline (one clock for connect + whole body, kept by _attempt) ends a slow answer;
        # httpx's own timeouts come after it, or its ReadTimeout would race the deadline's message.
        # Only connecting may fail sooner: after 10 s, when the deadline is longer than that.
        late = self.deadline + 1
        timeout = httpx.Timeout(late, connect=10.0 if self.deadline > 10 else late)
        problem = ""
        with httpx.Client(timeout=timeout) as client:
            for attempt in range(self.retries + 1):
                if attempt:
                    time.sleep(self.backoff * 2 ** (attempt - 1))
                try:
                    started = time.perf_counter()
                    status, body = self._attempt(client, path)
                    took = time.perf_counter() - started
                    if status >= 500:
                        raise RequestFailed(f"HTTP {status}")
                except RequestFailed as exc:
                    problem = str(exc)
                    continue
                if status == 400:
                    detail = _detail(body)
                    if is_end_of_data(detail):
                        # said in our words; the server's (course jargon, an endpoint) stay in server_said
                        group = self.params["group_number"]
                        raise SourceExhausted(f"{self.url} has served every batch of group {group}", detail)
                    raise SourceError(
                        f"data API {self.url} refused the request: {detail}",
                        hint="check MLOPS_DATA_GROUP (and MLOPS_DATA_DAY if the server takes a day)",
                    )
                if status >= 400:
                    raise SourceError(
                        f"data API {self.url}{path} answered HTTP {status}: {_detail(body)}",
                        hint="check MLOPS_DATA_SOURCE, MLOPS_DATA_GROUP and MLOPS_DATA_DAY",
                    )
                try:
                    return body, parse_json(body), took
                except ValueError:
                    problem = "malformed JSON"
        raise SourceError(
            f"data API {self.url}{path} failed after {self.retries + 1} attempts ({problem})",
            hint="is the data API up? `mlops data serve` starts the built-in one",
        )

    def fetch(self, batch: int | None = None) -> Answer:
        """The server's current answer (``batch`` is not sent: the server decides)."""
        body, document, took = self._get("/data")
        if not isinstance(document, dict) or "data" not in document or "batch_number" not in document:
            raise SourceError(f"data API {self.url} answered without 'batch_number' and 'data'")
        number = batch_number(document["batch_number"])
        if number is None:
            raise SourceError(
                f"data API {self.url} sent batch_number {str(document['batch_number'])[:40]!r}, not an integer in "
                f"0 .. {MAX_BATCH_NUMBER} (a non-negative integer is the contract); nothing was stored",
                hint="check that MLOPS_DATA_SOURCE is a data API with the course contract",
            )
        return Answer(number=number, rows=document["data"], body=body, seconds=took)

    def restart(self) -> None:
        self._get("/restart_data_generation")


# Batch numbers are stored as 32-bit integers (every database's INTEGER).
MAX_BATCH_NUMBER = 2**31 - 1


def batch_number(value: Any) -> int | None:
    """A data API's ``batch_number`` as an int in 0 .. MAX_BATCH_NUMBER (``3`` or ``3.0``), or None:
    text, true/false, fractions, NaN, infinities and numbers too large are no batch number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (value == value and abs(value) != float("inf") and value.is_integer()):
        return None
    return int(value) if 0 <= value <= MAX_BATCH_NUMBER else None


def _detail(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    return str(document.get("detail", document))[:300] if isinstance(document, dict) else str(document)[:200]


def open_source(settings: Settings) -> DataSource:
    """The source named by ``MLOPS_DATA_SOURCE``."""
    spec = settings.data_source
    if spec == "generator":
        return GeneratorSource(settings)
    if spec.startswith("csv:"):
        return FileSource(Path(spec[4:]).expanduser(), settings.generator_batches)
    return HttpSource(spec, settings)
