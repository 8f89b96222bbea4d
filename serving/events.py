"""Inference events: every /predict request remembered in the data DB's raw domain, off the hot path.

The request's middleware (serving/metrics.py) fills a :class:`PredictEvent` (defined beside the
writer, which reads it) with what the handler saw and hands it to :meth:`EventRecorder.record`,
which packs it and appends it to a bounded queue.
A thread drains the queue every ``MLOPS_API_EVENTS_FLUSH_INTERVAL`` seconds (sooner once
``MLOPS_API_EVENTS_FLUSH_ROWS`` events wait) and hands it in one frame to the writer process
(serving/event_writer.py), which turns each request into one row per listing (the listing as
received, its prediction, its unseen fields) and writes them in one transaction. A request never
waits for the database: when the queue is full or the database fails, events are dropped and
counted (``mlops_api_events_dropped{reason}``), and the API answers as before. The lifespan's
shutdown (SIGTERM, `mlops down`, a pod's termination) flushes what is queued.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

import msgspec

from serving.event_writer import PredictEvent, WriterDied, WriterProcess, frame_of

if TYPE_CHECKING:
    from mlops_cli.config import Settings
    from serving.model_server import LoadedModel

log = logging.getLogger("mlops.serving")
STOP_TIMEOUT = 10.0  # seconds a shutdown waits for the last write
_pack_into = msgspec.msgpack.Encoder().encode_into


def settle(event: PredictEvent, status: int, latency: float, error: bytes | None) -> None:
    """The answer's part of the event. A refusal keeps no prices (an explanation refused after
    pricing had them)."""
    event.status, event.latency = status, latency
    if status >= 400:
        event.error, event.prices, event.unseen = error or None, None, None


class EventRecorder:
    """The bounded queue, the thread that drains it, and the process that writes (one per API process).

    Each event is packed as it is queued, appended to one buffer: no object stays behind a request
    until the flush (it was a bytes object each), unless a shadow may price it: then the events
    wait as they are and are packed once the shadow has. The thread sends the buffer to the writer
    process as one frame every flush and counts what its answer says."""

    def __init__(self, settings: Settings, metrics: Any, shadow: Any = None) -> None:  # metrics: ApiMetrics
        self.settings = settings
        self.shadow = shadow  # a ModelHolder of the challenger (or a version), when shadowing is on
        self.shadow_share = settings.api_shadow_share
        self.shadowing = shadow is not None and self.shadow_share > 0
        self.metrics = metrics
        self.only_errors = settings.api_events == "errors"
        self.sample = settings.api_events_sample
        self.capacity = settings.api_events_queue
        self.capacity_bytes = settings.api_events_queue_bytes
        self.flush_rows = settings.api_events_flush_rows
        self._packed = bytearray()  # the queued events packed, one after another
        self._waiting: list[PredictEvent] = []  # or, when shadowing, the events themselves
        self._events = 0  # events queued
        self._rows = 0  # their listings (an event's rows are known before it is expanded)
        self._bytes = 0
        self._oldest = 0.0  # the first queued event's arrival (the writer's lag)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._writer = WriterProcess(settings)
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
            rows = 1 if event.prices is None else len(event.prices)
        else:
            rows = 1
        settle(event, status, latency, error)
        with self._lock:
            full = self._rows + rows > self.capacity or self._stopping
            if not full:
                if self.shadowing:  # packed once the shadow has priced it
                    size = len(event.raw or b"") + 64 * rows
                    full = self._bytes + size > self.capacity_bytes
                    if not full:
                        self._waiting.append(event)
                else:
                    packed = self._packed
                    end = len(packed)
                    event.rows = None
                    try:
                        _pack_into(event, packed, -1)
                    except BaseException:  # never half an event in the buffer: the frame would not read
                        del packed[end:]
                        raise
                    size = len(packed) - end
                    full = self._bytes + size > self.capacity_bytes
                    if full:
                        del packed[end:]
            if not full:
                if not self._events:
                    self._oldest = event.received_at
                self._events += 1
                self._rows += rows
                self._bytes += size
                wake = self._rows >= self.flush_rows
        if full:
            self.metrics.events_dropped.labels("shutdown" if self._stopping else "queue_full").inc(rows)
        elif wake:
            self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._writer.start()  # its imports take a moment: not at the first flush
            self._thread = threading.Thread(target=self._run, name="mlops-events", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Write what is queued, then end the thread and the writer process (at most ``timeout`` seconds)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("inference events: the last write did not end in %.0f s; its events may be lost", timeout)
            self._thread = None
        self._writer.close(timeout)

    def flush(self) -> None:
        """Write what is queued now, in the caller's thread (tests, benches)."""
        self._write(*self._take())

    def _run(self) -> None:
        interval = self.settings.api_events_flush_interval
        while True:
            self._wake.wait(interval)
            self._wake.clear()
            stopping = self._stopping
            self._write(*self._take())
            if stopping:
                return

    def _take(self) -> tuple[bytearray, list[PredictEvent], int, int, float]:
        """What is queued (packed, and waiting for the shadow), how many events, their listings,
        the oldest's arrival."""
        with self._lock:
            taken = self._packed, self._waiting, self._events, self._rows, self._oldest
            self._packed, self._waiting = bytearray(), []
            self._events = self._rows = self._bytes = 0
        return taken

    def _write(self, packed: bytearray, waiting: list[PredictEvent], events: int, count: int, oldest: float) -> None:
        if not events:
            return
        cpu = time.thread_time()
        if waiting:
            packed = self._shadow(waiting)
        reason = "db_error"
        try:
            failure, writer_cpu = self._writer.write(frame_of(events, packed))
        except WriterDied as exc:  # whether its last frame was written is unknown: counted dropped
            failure, writer_cpu, reason = str(exc), 0.0, "writer_died"
        self.metrics.events_writer_cpu.inc(time.thread_time() - cpu + writer_cpu)
        if failure is not None:  # the data DB is down or refuses: drop, count, say so once
            self.metrics.events_dropped.labels(reason).inc(count)
            self._dropped_since += count
            if self._failing is None:
                log.warning(
                    "inference events: cannot write to the data DB (%s); dropping events until it is back", failure
                )
            self._failing = failure
            return
        self.metrics.events_written.inc(count)
        self.metrics.events_lag.set(max(0.0, time.time() - oldest))
        if self._failing is not None:
            log.info("inference events: the data DB takes events again (%d dropped meanwhile)", self._dropped_since)
            self._failing, self._dropped_since = None, 0

    def _shadow(self, waiting: list[PredictEvent]) -> bytearray:
        """The waiting events packed, the shadow model's prices in a share of the answered ones:
        priced here in the writer thread, after their answers were sent, so the shadow never
        delays one. The chosen requests' listings are priced in one call (compiled trees price
        3,000 rows far faster than 3,000 single rows); each request's time is its listings'
        share of that call."""
        shadow = self.shadow.current if self.shadow is not None else None
        if shadow is not None:
            import random

            chosen = [
                event
                for event in waiting
                if event.status < 400
                and event.rows is not None
                and event.model is not None
                and event.model[1] != shadow.version
                and (self.shadow_share >= 1.0 or random.random() < self.shadow_share)
            ]
            if chosen:
                self._price_in_shadow(shadow, chosen)
        packed = bytearray()
        for event in waiting:
            event.rows = None
            _pack_into(event, packed, -1)
        return packed

    def _price_in_shadow(self, shadow: LoadedModel, chosen: list[PredictEvent]) -> None:
        """The shadow's prices and time set on each chosen event (none when the shadow fails)."""
        rows = [row for event in chosen for row in event.rows]
        start = time.perf_counter()
        try:
            prices, _ = shadow.predict_marked(rows)
        except Exception as exc:  # the shadow's failure is its own: the events are kept without it
            self.metrics.shadow_errors.inc(len(chosen))
            log.debug("shadow v%s failed: %s", shadow.version, exc)
            return
        per_row = (time.perf_counter() - start) * 1000 / len(rows)
        self.metrics.shadow_listings.inc(len(rows))
        at = 0
        for event in chosen:
            n = len(event.rows)
            # no NaN in the DB
            event.shadow_prices = [float(p) if math.isfinite(p) else None for p in prices[at : at + n]]
            event.shadow_version, event.shadow_ms = shadow.version, round(per_row * n, 4)
            at += n
