"""The inference events' writer process: it turns the API's packed events into rows of
``inference_events`` and writes them, so that none of that work holds the API's GIL.

The API (serving/events.py) packs each request's event with msgpack when its answer is sent and,
every flush, sends the packed events to this process as one frame on its stdin; the process
answers each frame on its stdout with whether the rows were written. Building the rows and the
database driver's work took ~9 µs of the API's event loop per request as a thread (bench/serve.py);
here they run beside it. The process ends when its stdin closes (the API stopped, however it
stopped); it ignores SIGTERM and SIGINT, which reach it with the API's process group, so that the
API's shutdown flush still finds it.

    python -m serving.event_writer    # started by the API, never by hand
"""

from __future__ import annotations

import gc
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from mlops_cli.config import Settings

ERROR_CHARS = 1000  # what an event keeps of a refusal's answer
LISTING_CHARS = 4000  # what an event keeps of a refused body (a priced listing is kept whole)
NO_UNSEEN = "[]"
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


class PredictEvent(msgspec.Struct, array_like=True, gc=False):
    """What one /predict request was and got: the API's middleware makes it, the handler fills the
    fields it reaches, the recorder (serving/events.py) sets the answer's and packs it as a msgpack
    array, and this process reads it back as one. Packing is one msgspec call (0.3 µs; 0.7 µs
    through a tuple of the same values), and neither process's garbage collector walks it (no GC
    tracking: it holds plain values and lists, never itself)."""

    request_id: str
    received_at: float  # seconds since the epoch
    status: int = 500
    latency: float = 0.0  # seconds
    error: bytes | None = None  # a refusal's answer
    model: tuple | None = None  # LoadedModel.event_ref of the model that answered: name, version, alias, path
    raw: bytes | None = None  # the body as received (None: refused before it was read)
    sent_list: bool = False
    prices: list[float] | None = None  # set once the listings were priced
    unseen: list[list[str]] | None = None
    shadow_version: int | None = None  # the shadow's version and prices, its time for the request (ms)
    shadow_prices: list[float | None] | None = None
    shadow_ms: float | None = None
    rows: list[dict[str, Any]] | None = None  # the validated listings (what a shadow prices; never packed)


_LENGTH = struct.Struct(">I")
_FRAME = msgspec.msgpack.Decoder(list[PredictEvent])  # what the API sends: events, end to end


def frame_of(count: int, packed: bytes | bytearray) -> bytes:
    """One frame of ``count`` packed events laid end to end: a msgpack array of them (its header
    written here, so the events are never unpacked in the API)."""
    return b"\xdd" + _LENGTH.pack(count) + packed


def write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(_LENGTH.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def read_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame, or None at the end of the stream (a frame cut short counts as the end)."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    payload = stream.read(size)
    return payload if len(payload) == size else None


def _listings(raw: bytes, sent_list: bool, count: int) -> list[str]:
    """Each listing of a priced request exactly as received: the body itself for one listing, each
    item's own bytes of a list (msgspec finds their bounds without parsing them)."""
    if not sent_list:
        return [raw.decode("utf-8", "replace").strip()]
    try:
        items = msgspec.json.decode(raw, type=list[msgspec.Raw])
    except msgspec.DecodeError:  # pydantic took what msgspec does not: keep an excerpt
        items = []
    if len(items) != count:
        return [raw[:LISTING_CHARS].decode("utf-8", "replace")] * count
    return [bytes(item).decode("utf-8", "replace") for item in items]


def event_rows(event: PredictEvent) -> list[tuple]:
    """The rows of ``inference_events`` (EVENT_COLUMNS order) one event leaves: one per listing of
    an answered request, one for a refused one."""
    status, error, raw, prices = event.status, event.error, event.raw, event.prices
    name, version, alias, path = event.model or (None, None, None, None)
    head = (
        event.request_id,
        datetime.fromtimestamp(event.received_at, UTC),
        "/predict",
        status,
        ERROR_KINDS.get(status, f"http_{status}") if status >= 400 else None,
        error.decode("utf-8", "replace")[:ERROR_CHARS] if status >= 400 and error else None,
        name,
        version,
        alias,
        path,
        round(event.latency * 1000, 3),
    )
    if status < 400 and prices is not None:
        marks = [json.dumps(fields) if fields else NO_UNSEEN for fields in event.unseen or ()]  # as the answer says
        marks = marks or [NO_UNSEEN] * len(prices)
        listings = _listings(raw or b"", event.sent_list, len(prices))
        shadow_version, shadow_prices, shadow_ms = event.shadow_version, event.shadow_prices, event.shadow_ms
        if shadow_prices is None:
            return [(*head, i, listings[i], prices[i], marks[i], None, None, None) for i in range(len(prices))]
        return [
            (*head, i, listings[i], prices[i], marks[i], shadow_version, shadow_prices[i], shadow_ms)
            for i in range(len(prices))
        ]
    excerpt = None if raw is None else raw[: LISTING_CHARS * 4].decode("utf-8", "replace")[:LISTING_CHARS]
    return [(*head, None, excerpt, None, None, None, None, None)]


class Writer:
    """Writes frames of packed events to the data DB (in the writer process)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Any = None

    def write(self, payload: bytes) -> str | None:
        """Write one frame's events in one transaction; the failure's kind, or None."""
        try:
            rows = [row for event in _FRAME.decode(payload) for row in event_rows(event)]
            self._insert(rows)
        except Exception as exc:  # the data DB is down or refuses: the API counts the events dropped
            return failure_kind(exc)
        return None

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


class WriterDied(Exception):
    """The writer process ended before answering a frame, or cannot be started."""


class WriterProcess:
    """The API's handle on its writer process: started on first use, started again after it died
    — after a pause that doubles with each death in a row (``first_pause`` seconds, at most
    ``MAX_PAUSE``), so that a writer that cannot run is not started at every flush."""

    MAX_PAUSE = 60.0

    def __init__(self, settings: Settings, first_pause: float = 1.0) -> None:
        self.config = msgspec.msgpack.encode({"home": str(settings.home), "data_db_url": str(settings.data_db_url)})
        self.command = [sys.executable, "-m", "serving.event_writer"]
        self.process: subprocess.Popen | None = None
        self.first_pause = first_pause
        self._deaths = 0
        self._start_after = 0.0  # time.monotonic() before which no process is started
        self._sending = threading.Lock()

    def _start(self) -> subprocess.Popen:
        process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # noqa: S603
        write_frame(process.stdin, self.config)  # the database's URL never on a command line
        return process

    def start(self) -> None:
        if self.process is None or self.process.poll() is not None:
            if time.monotonic() < self._start_after:
                raise WriterDied("the event writer process ended; it is started again after a pause")
            self.process = self._start()

    def write(self, payload: bytes) -> tuple[str | None, float]:
        """Send one frame and wait for its answer: (the failure's kind or None, the process's CPU
        seconds for it). A process found dead before the frame reached it is started again. One
        frame at a time: the recorder's thread and a caller's flush may both send."""
        with self._sending:
            return self._write(payload)

    def _write(self, payload: bytes) -> tuple[str | None, float]:
        for attempt in range(2):
            try:
                self.start()
                write_frame(self.process.stdin, payload)
                break
            except OSError:  # it had died: the frame never reached it (once: start another at once)
                self._discard(pause=bool(attempt))
                if attempt:
                    raise WriterDied("the event writer process cannot be started") from None
        try:
            reply = read_frame(self.process.stdout)
        except OSError:
            reply = None
        if reply is None:  # it died with the frame: whether it was written is unknown
            self._discard(pause=True)
            raise WriterDied("the event writer process ended")
        answer = msgspec.msgpack.decode(reply)
        self._deaths = 0
        return answer["failure"], answer["cpu"]

    def _discard(self, pause: bool) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
        if pause:
            self._start_after = time.monotonic() + min(self.MAX_PAUSE, self.first_pause * 2**self._deaths)
            self._deaths += 1

    def close(self, timeout: float) -> None:
        """End the process once it has answered what it was sent (its stdin closed)."""
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self.process = None


def failure_kind(exc: BaseException) -> str:
    """The failure's kind, without its text: a driver's message names the host."""
    from mlops_cli.errors import StorageError

    if isinstance(exc, StorageError):
        return "it cannot be opened"
    return type(getattr(exc, "orig", None) or exc).__name__


def main() -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the API's shutdown flush still needs us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to the API's log, never into the answers
    frames = sys.stdin.buffer
    config = read_frame(frames)
    if config is None:
        return 0
    from mlops_cli.config import load_settings
    from mlops_cli.faults import checkpoint

    writer = Writer(load_settings(**msgspec.msgpack.decode(config)))
    # A written frame leaves no cycle behind (measured: none after 50 frames), and the collector's
    # passes over its rows took 3 of every 13.5 µs a row; a failed write's traceback holds cycles:
    # collected after it.
    gc.collect()
    gc.disable()
    while (payload := read_frame(frames)) is not None:
        checkpoint("events_received")  # tests: a writer killed with a frame in hand
        cpu = time.process_time()
        failure = writer.write(payload)
        if failure is not None:
            gc.collect()
        try:
            write_frame(answers, msgspec.msgpack.encode({"failure": failure, "cpu": time.process_time() - cpu}))
        except BrokenPipeError:
            return 0  # the API is gone
    return 0


if __name__ == "__main__":
    sys.exit(main())
