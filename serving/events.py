"""Inference events: every /predict request remembered in the data DB's raw domain, off the hot path.

The request's middleware (serving/metrics.py) fills a :class:`PredictEvent` with what the handler
saw and hands it to :meth:`EventRecorder.record`, which only appends it to a bounded queue. A
writer thread drains the queue in bulk every ``MLOPS_API_EVENTS_FLUSH_INTERVAL`` seconds (sooner
once ``MLOPS_API_EVENTS_FLUSH_ROWS`` events wait): it turns each request into one row per listing
(the listing as received, its prediction, its unseen fields) and writes them in one transaction.
A request never waits for the database: when the queue is full or the database fails, events are
dropped and counted (``mlops_api_events_dropped{reason}``), and the API answers as before. The
lifespan's shutdown (SIGTERM, `mlops down`, a pod's termination) flushes what is queued.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_cli.config import Settings
    from serving.model_server import LoadedModel

log = logging.getLogger("mlops.serving")
ERROR_CHARS = 1000  # what an event keeps of a refusal's answer
LISTING_CHARS = 4000  # what an event keeps of a refused body (a priced listing is kept whole)

# What a refused request's status says, as the event's error_kind.
ERROR_KINDS = {
    400: "bad_request",
    413: "too_large",
    415: "media_type",
    422: "invalid",
    499: "client_disconnect",
    500: "internal",
    503: "unavailable",
}
STOP_TIMEOUT = 10.0  # seconds a shutdown waits for the last write


class PredictEvent:
    """What one /predict request was and got; the handler fills the fields it reaches."""

    __slots__ = ("request_id", "received_at", "raw", "sent_list", "model", "prices", "unseen", "rows")

    def __init__(self, request_id: str, received_at: float) -> None:
        self.request_id = request_id
        self.received_at = received_at
        self.raw: bytes | None = None  # the body as received (None: refused before it was read)
        self.sent_list = False
        self.model: LoadedModel | None = None
        self.prices: list[float] | None = None  # set once the listings were priced
        self.unseen: list[list[str]] | None = None
        self.rows: list[dict[str, Any]] | None = None  # the validated listings (what a shadow prices)


def _listings(raw: bytes, sent_list: bool, count: int) -> list[str]:
    """Each listing of a priced request exactly as received: the body itself for one listing, each
    item's own bytes of a list (msgspec finds their bounds without parsing them)."""
    if not sent_list:
        return [raw.decode("utf-8", "replace").strip()]
    import msgspec

    try:
        items = msgspec.json.decode(raw, type=list[msgspec.Raw])
    except msgspec.DecodeError:  # pydantic took what msgspec does not: keep an excerpt
        items = []
    if len(items) != count:
        return [raw[:LISTING_CHARS].decode("utf-8", "replace")] * count
    return [bytes(item).decode("utf-8", "replace") for item in items]


NO_UNSEEN = "[]"


def event_rows(
    event: PredictEvent, status: int, latency: float, error: bytes | None, shadow: Shadowed | None = None
) -> list[tuple]:
    """The rows of ``inference_events`` (EVENT_COLUMNS order) one request leaves."""
    model = event.model
    head = (
        event.request_id,
        datetime.fromtimestamp(event.received_at, UTC),
        "/predict",
        status,
        ERROR_KINDS.get(status, f"http_{status}") if status >= 400 else None,
        error.decode("utf-8", "replace")[:ERROR_CHARS] if status >= 400 and error else None,
        *((model.name, model.version, model.alias, model.kind) if model is not None else (None, None, None, None)),
        round(latency * 1000, 3),
    )
    prices = event.prices
    if status < 400 and prices is not None:
        unseen = event.unseen or ()
        marks = [json.dumps(fields) if fields else NO_UNSEEN for fields in unseen] or [NO_UNSEEN] * len(prices)
        listings = _listings(event.raw or b"", event.sent_list, len(prices))
        if shadow is None:
            return [
                (*head, index, listings[index], prices[index], marks[index], None, None, None)
                for index in range(len(prices))
            ]
        return [
            (
                *head,
                index,
                listings[index],
                prices[index],
                marks[index],
                shadow.version,
                shadow.prices[index],
                shadow.ms,
            )
            for index in range(len(prices))
        ]
    excerpt = None if event.raw is None else event.raw[: LISTING_CHARS * 4].decode("utf-8", "replace")[:LISTING_CHARS]
    return [(*head, None, excerpt, None, None, None, None, None)]


class Shadowed:
    """The shadow model's prices of one request's listings, and its time to price them."""

    __slots__ = ("version", "prices", "ms")

    def __init__(self, version: int, prices: list[float], ms: float) -> None:
        self.version, self.prices, self.ms = version, prices, ms


class EventRecorder:
    """The bounded queue and its writer thread (one per API process)."""

    def __init__(self, settings: Settings, metrics: Any, shadow: Any = None) -> None:  # metrics: ApiMetrics
        self.settings = settings
        self.shadow = shadow  # a ModelHolder of the challenger (or a version), when shadowing is on
        self.shadow_share = settings.api_shadow_share
        self.metrics = metrics
        self.only_errors = settings.api_events == "errors"
        self.sample = settings.api_events_sample
        self.capacity = settings.api_events_queue
        self.capacity_bytes = settings.api_events_queue_bytes
        self.flush_rows = settings.api_events_flush_rows
        self._queue: deque[tuple[PredictEvent, int, float, bytes | None, int]] = deque()
        self._rows = 0  # listings waiting (an event's rows are known before it is expanded)
        self._bytes = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._engine: Any = None
        self._failing: str | None = None  # the data DB's last failure, while it lasts
        self._dropped_since = 0
        metrics.events_queue.set_function(lambda: self._rows)

    def _sampled_out(self) -> bool:
        import random

        if random.random() < self.sample:
            return False
        self.metrics.events_sampled_out.inc()
        return True

    def record(self, event: PredictEvent, status: int, latency: float, error: bytes | None) -> None:
        """Queue one request's event (refusals always; answers unless MLOPS_API_EVENTS=errors, and
        at the sampling share); called on the event loop, never waits."""
        if status < 400:
            if self.only_errors or (self.sample < 1.0 and self._sampled_out()):
                return
            rows = len(event.prices) if event.prices is not None else 1
        else:
            rows = 1
        size = len(event.raw) if event.raw is not None else 0
        if error:
            size += len(error)
        with self._lock:
            full = self._rows + rows > self.capacity or self._bytes + size > self.capacity_bytes or self._stopping
            if not full:
                self._queue.append((event, status, latency, error, rows))
                self._rows += rows
                self._bytes += size
                wake = self._rows >= self.flush_rows
        if full:
            self.metrics.events_dropped.labels("shutdown" if self._stopping else "queue_full").inc(rows)
        elif wake:
            self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mlops-events", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Write what is queued, then end the writer (at most ``timeout`` seconds)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("inference events: the last write did not end in %.0f s; its events may be lost", timeout)
            self._thread = None

    def flush(self) -> None:
        """Write what is queued now, in the caller's thread (tests, benches)."""
        self._write(self._take())

    def _run(self) -> None:
        interval = self.settings.api_events_flush_interval
        while True:
            self._wake.wait(interval)
            self._wake.clear()
            stopping = self._stopping
            self._write(self._take())
            if stopping:
                return

    def _take(self) -> list[tuple[PredictEvent, int, float, bytes | None, int]]:
        with self._lock:
            taken = list(self._queue)
            self._queue.clear()
            self._rows = self._bytes = 0
        return taken

    def _write(self, taken: list[tuple[PredictEvent, int, float, bytes | None, int]]) -> None:
        if not taken:
            return
        count = sum(item[4] for item in taken)
        cpu = time.thread_time()
        try:
            self._write_rows(taken, count)
        finally:
            self.metrics.events_writer_cpu.inc(time.thread_time() - cpu)

    def _write_rows(self, taken: list[tuple[PredictEvent, int, float, bytes | None, int]], count: int) -> None:
        shadows = self._shadow(taken)
        try:
            rows = [
                row
                for event, status, seconds, error, _ in taken
                for row in event_rows(event, status, seconds, error, shadows.get(id(event)))
            ]
            self._insert(rows)
        except Exception as exc:  # the data DB is down or refuses: drop, count, say so once
            self.metrics.events_dropped.labels("db_error").inc(count)
            self._dropped_since += count
            reason = failure_kind(exc)
            if self._failing is None:
                log.warning(
                    "inference events: cannot write to the data DB (%s); dropping events until it is back", reason
                )
            self._failing = reason
            return
        self.metrics.events_written.inc(count)
        self.metrics.events_lag.set(max(0.0, time.time() - taken[0][0].received_at))
        if self._failing is not None:
            log.info("inference events: the data DB takes events again (%d dropped meanwhile)", self._dropped_since)
            self._failing, self._dropped_since = None, 0

    def _shadow(self, taken: list[tuple[PredictEvent, int, float, bytes | None, int]]) -> dict[int, Shadowed]:
        """The shadow model's prices of a share of the answered requests, here in the writer:
        after their answers were sent, so the shadow never delays one. The chosen requests'
        listings are priced in one call (compiled trees price 3,000 rows far faster than 3,000
        single rows); each request's time is its listings' share of that call."""
        shadow = self.shadow.current if self.shadow is not None else None
        if shadow is None or self.shadow_share <= 0:
            return {}
        import random

        chosen = [
            event
            for event, status, _, _, _ in taken
            if status < 400
            and event.rows is not None
            and event.model is not None
            and event.model.version != shadow.version
            and (self.shadow_share >= 1.0 or random.random() < self.shadow_share)
        ]
        if not chosen:
            return {}
        rows = [row for event in chosen for row in event.rows]
        start = time.perf_counter()
        try:
            prices, _ = shadow.predict_marked(rows)
        except Exception as exc:  # the shadow's failure is its own: the events are kept without it
            self.metrics.shadow_errors.inc(len(chosen))
            log.debug("shadow v%s failed: %s", shadow.version, exc)
            return {}
        per_row = (time.perf_counter() - start) * 1000 / len(rows)
        self.metrics.shadow_listings.inc(len(rows))
        priced: dict[int, Shadowed] = {}
        at = 0
        for event in chosen:
            n = len(event.rows)
            mine = [float(p) if math.isfinite(p) else None for p in prices[at : at + n]]  # no NaN in the DB
            priced[id(event)] = Shadowed(shadow.version, mine, round(per_row * n, 4))
            at += n
        return priced

    def _insert(self, rows: list[tuple]) -> None:
        from mlops_cli.store.db import engine_for, is_disconnect
        from mlops_cli.store.events import write_events

        if self._engine is None:
            self._engine = engine_for(self.settings)
        try:
            write_events(self._engine, rows)
        except Exception as exc:
            if not is_disconnect(exc):
                raise
            write_events(self._engine, rows)  # the pool reconnects: a dropped connection is retried once


def failure_kind(exc: BaseException) -> str:
    """The failure's kind, without its text: a driver's message names the host."""
    from mlops_cli.errors import StorageError

    if isinstance(exc, StorageError):
        return "it cannot be opened"
    return type(getattr(exc, "orig", None) or exc).__name__
