"""The events' writer process: rows as the events table wants them, written beside the API, ended
with its stdin (never by the API's SIGTERM), started again after it died, every event counted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from mlops_cli.config import load_settings
from mlops_cli.store.db import engine_for
from mlops_cli.store.events import EVENT_COLUMNS, read_events
from serving.event_writer import (
    WriterProcess,
    event_rows,
    failure_kind,
    frame_of,
    read_frame,
    write_frame,
)
from serving.events import EventRecorder, PredictEvent, settle
from serving.metrics import ApiMetrics
from tests.conftest import LISTING

MODEL = ("house_prices", 3, "champion", "fast")  # LoadedModel.event_ref


def answered(request_id: str, listings: list[dict], prices: list[float]) -> PredictEvent:
    event = PredictEvent(request_id, time.time())
    event.raw = json.dumps(listings if len(listings) > 1 else listings[0]).encode()
    event.sent_list, event.model, event.prices = len(listings) > 1, MODEL, prices
    event.unseen = [["city", "zip_code"] if n == 0 else [] for n in range(len(listings))]
    return event


def pack(event: PredictEvent, status: int, latency: float, error: bytes | None) -> bytes:
    """One event with its answer, packed as the recorder packs it into its buffer."""
    settle(event, status, latency, error)
    event.rows = None
    return msgspec.msgpack.encode(event)


def frame_of_packed(packed: list[bytes]) -> bytes:
    """One frame of events packed one by one (the API packs them into one buffer)."""
    return frame_of(len(packed), b"".join(packed))


def settings_in(tmp_path: Path):
    return load_settings(home=tmp_path, data_db_url=f"sqlite:///{tmp_path / 'events.db'}")


def test_a_packed_event_becomes_one_row_per_listing_as_received() -> None:
    listings = [dict(LISTING, extra="kept"), dict(LISTING, bed=5)]
    event = msgspec.msgpack.decode(pack(answered("r1", listings, [1.5, 2.5]), 200, 0.0042, None), type=PredictEvent)
    rows = [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in event_rows(event)]
    stored = [(r["item"], r["prediction"], r["unseen"]) for r in rows]
    assert stored == [(0, 1.5, '["city", "zip_code"]'), (1, 2.5, "[]")]  # as the answer writes them
    assert [json.loads(r["listing"]) for r in rows] == listings
    assert rows[0]["latency_ms"] == 4.2 and rows[0]["model_version"] == 3 and rows[0]["status"] == 200
    assert rows[0]["received_at"].tzinfo is not None and rows[0]["shadow_version"] is None


def test_a_refusal_is_one_row_with_its_kind_its_answer_and_an_excerpt_of_the_body() -> None:
    event = PredictEvent("r2", time.time())
    event.raw, event.model = b'{"bed": "x' + b"y" * 10_000, MODEL
    packed = msgspec.msgpack.decode(pack(event, 422, 0.001, b'{"detail":"bed"}'), type=PredictEvent)
    (row,) = [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in event_rows(packed)]
    assert (row["error_kind"], row["error"]) == ("invalid", '{"detail":"bed"}')
    assert row["item"] is None and row["prediction"] is None
    assert row["listing"].startswith('{"bed": "x') and len(row["listing"]) == 4000


def test_a_frame_is_written_and_answered_and_the_process_ends_with_its_stdin(tmp_path: Path) -> None:
    writer = WriterProcess(settings_in(tmp_path))
    frame = frame_of_packed([pack(answered(f"r{n}", [LISTING], [float(n)]), 200, 0.001, None) for n in range(3)])
    failure, cpu = writer.write(frame)
    assert failure is None and cpu >= 0
    assert sorted(e["request_id"] for e in read_events(engine_for(settings_in(tmp_path)))) == ["r0", "r1", "r2"]
    process = writer.process
    writer.close(10)
    assert process.returncode == 0


def test_the_writer_outlives_a_sigterm_to_answer_the_last_flush(tmp_path: Path) -> None:
    """`mlops down` and a pod's termination signal the API's whole process group."""
    writer = WriterProcess(settings_in(tmp_path))
    writer.start()
    time.sleep(0.5)
    writer.process.send_signal(signal.SIGTERM)
    writer.process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    assert writer.process.poll() is None
    assert writer.write(frame_of_packed([pack(answered("last", [LISTING], [1.0]), 200, 0.001, None)]))[0] is None
    writer.close(10)
    assert [e["request_id"] for e in read_events(engine_for(settings_in(tmp_path)))] == ["last"]


def test_a_database_failure_is_answered_by_its_kind_without_the_drivers_text(tmp_path: Path) -> None:
    url = "postgresql+psycopg://someone:secret@127.0.0.1:9/nowhere"
    writer = WriterProcess(load_settings(home=tmp_path, data_db_url=url))
    failure, _ = writer.write(frame_of_packed([pack(answered("r", [LISTING], [1.0]), 200, 0.001, None)]))
    writer.close(10)
    assert failure == "it cannot be opened"
    assert "secret" not in failure and "127.0.0.1" not in failure
    assert failure_kind(ValueError("host db.internal refused")) == "ValueError"


def test_a_killed_writer_is_started_again_and_every_event_is_written_or_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_in(tmp_path).model_copy(update={"api_events_flush_interval": 60})
    metrics = ApiMetrics()
    recorder = EventRecorder(settings, metrics)

    def value(name: str, **labels: str) -> float:
        return metrics.registry.get_sample_value(name, labels or None) or 0.0

    try:
        recorder.record(answered("before", [LISTING], [1.0]), 200, 0.001, None)
        recorder.flush()
        first = recorder._writer.process
        os.kill(first.pid, signal.SIGKILL)  # killed between two flushes: the next frame finds a new one
        first.wait()
        recorder.record(answered("after-kill", [LISTING, LISTING], [1.0, 2.0]), 200, 0.001, None)
        recorder.flush()
        assert recorder._writer.process is not first
        # killed with a frame in hand (the fault hook, inherited by the next writer started)
        monkeypatch.setenv("MLOPS_FAULT_KILL_AT", "events_received")
        os.kill(recorder._writer.process.pid, signal.SIGKILL)
        recorder._writer.process.wait()
        recorder.record(answered("lost", [LISTING], [1.0]), 200, 0.001, None)
        recorder.flush()
        monkeypatch.delenv("MLOPS_FAULT_KILL_AT")
        recorder.record(answered("in-the-pause", [LISTING], [1.0]), 200, 0.001, None)
        recorder.flush()  # a writer that died with a frame is started again after a pause (1 s)
        time.sleep(1.1)
        recorder.record(answered("after-death", [LISTING], [1.0]), 200, 0.001, None)
        recorder.flush()
    finally:
        recorder.stop()
    stored = sorted(e["request_id"] for e in read_events(engine_for(settings)))
    assert stored == ["after-death", "after-kill", "after-kill", "before"]
    assert value("mlops_api_events_written_total") == 4
    assert value("mlops_api_events_dropped_total", reason="writer_died") == 2  # "lost", "in-the-pause"
    assert recorder._writer.process is None  # stopped with the recorder


def test_frames_survive_a_stream_and_a_cut_one_reads_as_the_end() -> None:
    reader, writer = os.pipe()
    with os.fdopen(writer, "wb") as out:
        write_frame(out, b"one")
        write_frame(out, b"")
        out.write(b"\x00\x00\x00\x09cut")
    with os.fdopen(reader, "rb") as stream:
        assert [read_frame(stream), read_frame(stream), read_frame(stream)] == [b"one", b"", None]


def test_the_writer_ends_quietly_when_the_api_never_configured_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "serving.event_writer"], input=b"", capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout == b""


def test_a_writer_that_dies_at_once_is_started_again_only_after_a_pause(tmp_path: Path) -> None:
    """A writer that cannot run (a broken environment) must not be started at every flush."""
    from serving.event_writer import WriterDied

    writer = WriterProcess(settings_in(tmp_path), first_pause=0.5)
    writer.command = [sys.executable, "-c", "raise SystemExit(3)"]
    started = []
    start = writer._start
    writer._start = lambda: started.append(time.monotonic()) or start()
    frame = frame_of_packed([pack(answered("r", [LISTING], [1.0]), 200, 0.001, None)])
    for _ in range(6):
        with pytest.raises(WriterDied):
            writer.write(frame)
    assert 1 <= len(started) <= 2  # the flush that found it dead may try once more
    time.sleep(0.6)
    writer.command = [sys.executable, "-m", "serving.event_writer"]  # the environment mended
    assert writer.write(frame)[0] is None
    writer.close(10)
    assert [e["request_id"] for e in read_events(engine_for(settings_in(tmp_path)))] == ["r"]


@pytest.mark.timeout(120)  # frames mixed on the pipe leave a thread waiting for an answer for ever
def test_frames_sent_from_several_threads_reach_the_writer_whole(tmp_path: Path) -> None:
    """The recorder's thread and a caller's flush (tests, benches) may send at the same moment."""
    import threading

    writer = WriterProcess(settings_in(tmp_path))
    many = [dict(LISTING, bed=n % 7 + 1) for n in range(600)]  # a frame past a pipe's 64 KiB
    answers: list[str | None] = []

    def send(name: str) -> None:
        for n in range(8):
            event = answered(f"{name}-{n}", many, [1.0] * len(many))
            answers.append(writer.write(frame_of_packed([pack(event, 200, 0.001, None)]))[0])

    try:
        threads = [threading.Thread(target=send, args=(name,)) for name in "abcd"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        writer.close(10)
    assert answers == [None] * 32
    assert len(read_events(engine_for(settings_in(tmp_path)))) == 32 * 600


def test_events_are_written_while_another_process_reads_the_embedded_data_db(tmp_path: Path) -> None:
    """A retrain reading its rows, the UI's pages, `mlops events export`: on SQLite's rollback
    journal a read under way held the writer's commit until the driver gave up (5 s), and the
    whole flush was dropped as a database error."""
    import sqlite3

    settings = settings_in(tmp_path)
    writer = WriterProcess(settings)
    assert writer.write(frame_of_packed([pack(answered("first", [LISTING], [1.0]), 200, 0.001, None)]))[0] is None
    reader = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT request_id FROM inference_events").fetchall() == [("first",)]
    try:
        failure, _ = writer.write(frame_of_packed([pack(answered("during", [LISTING], [2.0]), 200, 0.001, None)]))
        assert failure is None
        assert reader.execute("SELECT count(*) FROM inference_events").fetchone() == (1,)  # the read's own view
    finally:
        reader.execute("ROLLBACK")
        reader.close()
        writer.close(10)
    assert sorted(e["request_id"] for e in read_events(engine_for(settings))) == ["during", "first"]
