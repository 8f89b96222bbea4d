"""Inference events: every /predict request remembered in the data DB's raw domain, off the hot path.

The request's middleware (serving/metrics.py) fills a :class:`PredictEvent` with what the handler
saw and hands it to :meth:`EventRecorder.record`, which packs it and appends it to a bounded queue.
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

from serving.event_writer import WriterDied, WriterProcess, frame_of_packed

if TYPE_CHECKING:
    from mlops_cli.config import Settings
    from serving.model_server import LoadedModel

log = logging.getLogger("mlops.serving")
STOP_TIMEOUT = 10.0  # seconds a shutdown waits for the last write
_pack = msgspec.msgpack.Encoder().encode


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


def pack(
    event: PredictEvent,
    status: int,
    latency: float,
    error: bytes | None,
    shadow: tuple[int, list[float | None], float] | None = None,
) -> bytes:
    """The event as the writer process reads it (serving/event_writer.RECORD): plain values only."""
    model = event.model
    ref = (model.name, model.version, model.alias, model.kind) if model is not None else (None, None, None, None)
    answered = status < 400 and event.prices is not None
    return _pack(
        (
            event.request_id,
            event.received_at,
            status,
            latency,
            error or None,
            *ref,
            event.raw,
            event.sent_list,
            event.prices if answered else None,
            event.unseen if answered else None,
            *(shadow or (None, None, None)),
        )
    )


class EventRecorder:
    """The bounded queue, the thread that drains it, and the process that writes (one per API process).

    An answered request's event is packed into bytes as it is queued (nothing but one bytes object
    stays behind it for the collector to walk), unless a shadow may price it: then it is packed
    once the shadow has. The thread sends the packed events to the writer process in one frame
    every flush and counts what its answer says."""

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
        # packed events, or (event, status, latency, error) awaiting the shadow (nothing else per
        # request: a tuple beside each was one more object for the collector, and their listings'
        # total is _rows)
        self._queue: list[bytes | tuple[PredictEvent, int, float, bytes | None]] = []
        self._rows = 0  # listings waiting (an event's rows are known before it is expanded)
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
            rows = len(event.prices) if event.prices is not None else 1
        else:
            rows = 1
        if self.shadowing and status < 400:
            item: bytes | tuple = (event, status, latency, error)
            size = len(event.raw or b"") + 64 * rows
        else:
            item = pack(event, status, latency, error)
            size = len(item)
        with self._lock:
            full = self._rows + rows > self.capacity or self._bytes + size > self.capacity_bytes or self._stopping
            if not full:
                if not self._queue:
                    self._oldest = event.received_at
                self._queue.append(item)
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

    def _take(self) -> tuple[list[bytes | tuple], int, float]:
        """What is queued, its listings, the oldest's arrival."""
        with self._lock:
            taken, count, self._queue, oldest = self._queue, self._rows, [], self._oldest
            self._rows = self._bytes = 0
        return taken, count, oldest

    def _write(self, taken: list[bytes | tuple], count: int, oldest: float) -> None:
        if not taken:
            return
        cpu = time.thread_time()
        packed = self._shadow(taken) if self.shadowing else taken
        reason = "db_error"
        try:
            failure, writer_cpu = self._writer.write(frame_of_packed(packed))
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

    def _shadow(self, items: list[bytes | tuple[PredictEvent, int, float, bytes | None]]) -> list[bytes]:
        """The queued events packed, the shadow model's prices in a share of the answered ones:
        priced here in the writer thread, after their answers were sent, so the shadow never
        delays one. The chosen requests' listings are priced in one call (compiled trees price
        3,000 rows far faster than 3,000 single rows); each request's time is its listings'
        share of that call."""
        waiting = [item for item in items if not isinstance(item, bytes)]
        shadow = self.shadow.current if self.shadow is not None else None
        priced: dict[int, tuple[int, list[float | None], float]] = {}
        if shadow is not None and waiting:
            import random

            chosen = [
                event
                for event, status, _, _ in waiting
                if status < 400
                and event.rows is not None
                and event.model is not None
                and event.model.version != shadow.version
                and (self.shadow_share >= 1.0 or random.random() < self.shadow_share)
            ]
            if chosen:
                priced = self._price_in_shadow(shadow, chosen)
        return [item if isinstance(item, bytes) else pack(*item, shadow=priced.get(id(item[0]))) for item in items]

    def _price_in_shadow(
        self, shadow: LoadedModel, chosen: list[PredictEvent]
    ) -> dict[int, tuple[int, list[float | None], float]]:
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
        priced = {}
        at = 0
        for event in chosen:
            n = len(event.rows)
            mine = [float(p) if math.isfinite(p) else None for p in prices[at : at + n]]  # no NaN in the DB
            priced[id(event)] = (shadow.version, mine, round(per_row * n, 4))
            at += n
        return priced
