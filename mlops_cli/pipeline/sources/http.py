"""A remote data API with the course's contract: not replayable (every call may advance its
cursor), so the engine stores each answer's body before doing anything else with it."""

from __future__ import annotations

import json
import time
import unicodedata
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import SourceError, SourceExhausted
from mlops_cli.pipeline.sources.base import Answer

if TYPE_CHECKING:
    from mlops_cli.config import Settings

# What a data API says when every batch has been served: the course server's words (with or
# without accents) or ours. Any other 400 is an error showing the server's detail.
END_OF_DATA_PHRASES = ("ya se recolecto toda la informacion minima necesaria", "every batch has been served")


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
