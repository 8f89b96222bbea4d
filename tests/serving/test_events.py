"""Inference events: every /predict request leaves its rows in the data DB's raw domain, written
off the request's path; a data DB that fails drops and counts events, never a request."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mlops_cli.store.db import engine_for
from mlops_cli.store.events import count_events, read_events, write_events
from serving.app import create_app
from serving.events import EventRecorder, PredictEvent
from serving.metrics import ApiMetrics
from serving.model_server import wait_until_loaded
from tests.conftest import LISTING, event_row, serving_settings
from tests.serving.conftest import metric, training_listings


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def data_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    request.applymarker(pytest.mark.external_db)
    return request.getfixturevalue(f"{request.param}_url")


def by_request(settings) -> dict[str, list[dict]]:
    events: dict[str, list[dict]] = {}
    for event in sorted(read_events(engine_for(settings)), key=lambda e: (e["request_id"], e["item"] or 0)):
        events.setdefault(event["request_id"], []).append(event)
    return events


def test_every_request_of_a_mixed_run_is_recorded_once(registry_home: Path, data_db: str) -> None:
    # a flush interval longer than the test: the events reach the DB through the shutdown's flush
    settings = serving_settings(
        registry_home, data_db_url=data_db, api_max_batch=5, api_max_body_bytes=4096, api_events_flush_interval=60
    )
    ids = {}
    app = create_app(settings, load_on_start=False)
    with TestClient(app) as client:
        response = client.post("/predict", json=LISTING, headers={"X-Request-ID": "before-load"})
        assert response.status_code == 503 and response.headers["x-request-id"] == "before-load"
    app = create_app(settings)
    with TestClient(app) as client:
        assert wait_until_loaded(app.state.holder, 60) is not None
        sent = {
            "one": client.post("/predict", json=LISTING),
            "three": client.post("/predict", json=[LISTING, {**LISTING, "city": "Atlantis", "note": "x"}, LISTING]),
            "invalid": client.post("/predict", json={**LISTING, "bed": -1}),
            "too_many": client.post("/predict", json=[LISTING] * 6),
            "too_large": client.post("/predict", json={**LISTING, "street": "x" * 5000}),
            "not_json": client.post("/predict", content=b"city=Austin", headers={"Content-Type": "text/plain"}),
        }
        assert [r.status_code for r in sent.values()] == [200, 200, 422, 422, 413, 415]
        ids = {name: r.headers["x-request-id"] for name, r in sent.items()}
        assert len(set(ids.values())) == len(ids), "every request gets its own id"
        prices = sent["three"].json()["predictions"]
        version = sent["one"].json()["model"]["version"]
    assert metric(app, "mlops_api_events_written_total") == 8
    events = by_request(settings)
    assert sorted(events) == sorted([*ids.values(), "before-load"]), "each request once, nothing else"

    (before,) = events["before-load"]
    assert (before["status"], before["error_kind"], before["model_version"]) == (503, "unavailable", None)
    assert "no model loaded" in before["error"] and '"city":"Austin"' in before["listing"].replace(" ", "")

    (one,) = events[ids["one"]]
    assert (one["status"], one["item"], one["model_version"], one["model_alias"]) == (200, 0, version, "champion")
    assert one["model_path"] == "fast" and one["prediction"] == sent["one"].json()["predictions"][0]
    assert one["error"] is None and one["unseen"] == "[]" and one["latency_ms"] > 0

    three = events[ids["three"]]
    assert [e["item"] for e in three] == [0, 1, 2] and [e["prediction"] for e in three] == prices
    assert [e["unseen"] for e in three] == ["[]", '["city"]', "[]"]
    assert '"note":"x"' in three[1]["listing"], "the listing as received, fields the model ignores included"
    assert len({e["received_at"] for e in three}) == 1

    for name, status, kind, words in (
        ("invalid", 422, "invalid", '"bed"'),
        ("too_many", 422, "invalid", "at most 5"),
        ("too_large", 413, "too_large", "4096 bytes"),
        ("not_json", 415, "media_type", "application/json"),
    ):
        (event,) = events[ids[name]]
        assert (event["status"], event["error_kind"], event["item"], event["prediction"]) == (status, kind, None, None)
        assert words in event["error"], (name, event["error"])
    assert events[ids["not_json"]][0]["listing"] is None and events[ids["too_large"]][0]["listing"] is None
    assert '"bed":-1' in events[ids["invalid"]][0]["listing"].replace(" ", "")


def test_a_callers_request_id_is_kept_and_an_unsafe_one_replaced(registry_home: Path, tmp_path: Path) -> None:
    settings = serving_settings(registry_home, data_db_url=f"sqlite:///{tmp_path / 'e.db'}", api_events="off")
    app = create_app(settings)
    with TestClient(app) as client:
        assert wait_until_loaded(app.state.holder, 60) is not None
        kept = client.post("/predict", json=LISTING, headers={"X-Request-ID": "trace-7f3a:01"})
        assert kept.headers["x-request-id"] == "trace-7f3a:01"
        for unsafe in ("x" * 65, "a b", "<script>"):
            made = client.post("/predict", json=LISTING, headers={"X-Request-ID": unsafe}).headers["x-request-id"]
            assert made != unsafe and 0 < len(made) <= 64
        assert client.get("/model").headers.get("x-request-id") is None, "only /predict is an event"
    assert count_events(engine_for(settings)) == 0, "MLOPS_API_EVENTS=off writes nothing"


def test_errors_mode_and_sampling_account_for_every_listing(registry_home: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    only_errors = create_app(serving_settings(registry_home, data_db_url=url, api_events="errors"))
    with TestClient(only_errors) as client:
        assert wait_until_loaded(only_errors.state.holder, 60) is not None
        statuses = [client.post("/predict", json=body).status_code for body in (LISTING, {"city": 1}, [LISTING] * 2)]
    assert statuses == [200, 422, 200]
    assert [e["status"] for e in read_events(engine_for(only_errors.state.holder.settings))] == [422]

    url = f"sqlite:///{tmp_path / 'sampled.db'}"
    sampled = create_app(serving_settings(registry_home, data_db_url=url, api_events_sample=0.5))
    with TestClient(sampled) as client:
        assert wait_until_loaded(sampled.state.holder, 60) is not None
        for _ in range(200):
            assert client.post("/predict", json=LISTING).status_code == 200
        assert client.post("/predict", json={"city": 1}).status_code == 422
    written = metric(sampled, "mlops_api_events_written_total")
    out = metric(sampled, "mlops_api_events_sampled_out_total")
    assert written + out == 201 and 50 < out < 150, "refusals are always kept, answers sampled"
    assert count_events(engine_for(sampled.state.holder.settings)) == written


def _event(request_id: str, listings: int = 1) -> PredictEvent:
    event = PredictEvent(request_id, datetime.now(UTC).timestamp())
    event.raw = b"[" + b",".join([b'{"city":"Austin"}'] * listings) + b"]"
    event.sent_list, event.prices, event.unseen = True, [1.0] * listings, [[]] * listings
    return event


def test_a_full_queue_drops_and_counts_and_never_grows(tmp_path: Path) -> None:
    from mlops_cli.config import load_settings

    settings = load_settings(home=tmp_path, data_db_url=f"sqlite:///{tmp_path / 'e.db'}", api_events_queue=5)
    metrics = ApiMetrics()
    recorder = EventRecorder(settings, metrics)  # not started: nothing drains the queue
    for n in range(4):
        recorder.record(_event(f"r{n}", listings=2), 200, 0.001, None)
    assert metrics.registry.get_sample_value("mlops_api_events_queue_depth") == 4
    assert metrics.registry.get_sample_value("mlops_api_events_dropped_total", {"reason": "queue_full"}) == 4
    recorder.flush()
    assert [e["request_id"] for e in read_events(engine_for(settings))] == ["r1", "r1", "r0", "r0"]
    assert metrics.registry.get_sample_value("mlops_api_events_written_total") == 4


def test_the_queues_bytes_are_bounded_and_what_it_refuses_leaves_no_trace(tmp_path: Path) -> None:
    """The queued events are packed end to end in one buffer: one past the byte bound, or one that
    cannot be packed, must leave the others readable."""
    from mlops_cli.config import load_settings

    settings = load_settings(home=tmp_path, data_db_url=f"sqlite:///{tmp_path / 'e.db'}", api_events_queue_bytes=1024)
    metrics = ApiMetrics()
    recorder = EventRecorder(settings, metrics)
    recorder.record(_event("kept", listings=2), 200, 0.001, None)
    unpackable = _event("unpackable")
    unpackable.unseen = [[object()]]
    with pytest.raises(TypeError):
        recorder.record(unpackable, 200, 0.001, None)
    big = _event("too-big", listings=40)  # its listings alone are past the bound
    recorder.record(big, 200, 0.001, None)
    recorder.record(_event("last"), 422, 0.001, b'{"detail":"bed"}')
    assert metrics.registry.get_sample_value("mlops_api_events_dropped_total", {"reason": "queue_full"}) == 40
    recorder.flush()
    stored = sorted((e["request_id"], e["item"], e["status"]) for e in read_events(engine_for(settings)))
    assert stored == [("kept", 0, 200), ("kept", 1, 200), ("last", None, 422)]
    assert metrics.registry.get_sample_value("mlops_api_events_written_total") == 3


class CuttableProxy:
    """A loopback TCP proxy to a database server that the test can cut (every connection closed,
    new ones refused) and restore: a real outage as the API's writer sees it."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for s in (source, target):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        assert self.listener is not None
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() in progress (a close alone does not)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.sockets = []


@pytest.fixture
def proxied_postgres(postgres_url: str) -> Iterator[tuple[str, CuttableProxy]]:
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    proxy = CuttableProxy(url.host, url.port or 5432)
    yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy
    proxy.cut()


@pytest.mark.external_db
def test_a_data_db_outage_fails_no_request_and_every_event_is_written_or_counted(
    registry_home: Path, proxied_postgres: tuple[str, CuttableProxy]
) -> None:
    url, proxy = proxied_postgres
    settings = serving_settings(registry_home, data_db_url=url, api_events_flush_interval=0.1)
    app = create_app(settings)
    statuses: Counter[int] = Counter()
    with TestClient(app) as client:
        assert wait_until_loaded(app.state.holder, 60) is not None

        def send(n: int) -> None:
            for i in range(n):
                body = LISTING if i % 3 else [LISTING, LISTING]
                statuses[client.post("/predict", json=body).status_code] += 1

        def settled(what: str) -> None:  # every queued event taken by the writer
            import time

            deadline = time.monotonic() + 20
            while metric(app, "mlops_api_events_queue_depth") and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)  # the write in progress ends
            assert metric(app, "mlops_api_events_queue_depth") == 0, what

        send(60)
        settled("before the outage")
        written_before = metric(app, "mlops_api_events_written_total")
        proxy.cut()
        send(60)
        settled("during the outage")
        dropped = metric(app, "mlops_api_events_dropped_total", reason="db_error")
        assert dropped > 0, "the outage dropped the events it held"
        proxy.restore()
        send(60)
    sent_listings = 3 * (40 + 20 * 2)
    assert statuses == {200: 180}, "the outage failed no request"
    written = metric(app, "mlops_api_events_written_total")
    assert written > written_before and written + dropped == sent_listings
    assert count_events(engine_for(serving_settings(registry_home, data_db_url=url))) == written


def test_the_loop_ages_out_events_past_the_retention(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_cli.config import load_settings
    from mlops_cli.pipeline.train import run
    from tests.conftest import small_generator_env

    small_generator_env(monkeypatch, batches=1, rows=200)
    monkeypatch.setenv("MLOPS_API_EVENTS_RETENTION_DAYS", "7")
    settings = load_settings()
    engine = engine_for(settings)
    now = datetime.now(UTC)
    old, recent = event_row("old", now - timedelta(days=8)), event_row("recent", now - timedelta(days=6))
    write_events(engine, [old, recent])
    run(settings, reload_api=False)
    assert [e["request_id"] for e in read_events(engine)] == ["recent"]


@pytest.mark.slow
def test_a_real_api_loses_no_event_across_reloads_and_a_sigterm(
    registry_env: dict[str, str], registry_home: Path, tmp_path: Path
) -> None:
    """`mlops serve` under uvicorn: requests while versions are swapped 58 times, then SIGTERM (as `mlops
    down` and Kubernetes stop it). The writer's interval is longer than the test, so every event
    reaches the DB through the shutdown's flush; each names the version that answered it."""
    import httpx

    from mlops_cli.ops.netutil import free_port
    from mlops_cli.ops.services import mlops_command
    from mlops_cli.registry.models import list_versions
    from tests.conftest import TOKEN, start_logged, stop_group, wait_http

    url = f"sqlite:///{tmp_path / 'events.db'}"
    env = {**registry_env, "MLOPS_DATA_DB_URL": url, "MLOPS_API_EVENTS_FLUSH_INTERVAL": "60"}
    port = free_port()
    process = start_logged(mlops_command("serve", "--port", str(port)), env, tmp_path / "api.log")
    api = f"http://127.0.0.1:{port}"
    versions = [v["version"] for v in list_versions(serving_settings(registry_home))][:2]
    answered: dict[str, int] = {}
    try:
        wait_http(f"{api}/health/ready", process=process, ready=lambda r: r.status_code == 200)
        with httpx.Client(timeout=30) as client:
            for reload in range(58):  # as many reloads as the reload soak's promotions
                loaded = client.post(f"{api}/load_model", json={"version": versions[reload % 2]}, headers=TOKEN)
                assert loaded.status_code == 200
                for _ in range(10):
                    response = client.post(f"{api}/predict", json=LISTING)
                    assert response.status_code == 200
                    answered[response.headers["x-request-id"]] = response.json()["model"]["version"]
    finally:
        stop_group(process)
    assert process.returncode is not None
    events = read_events(engine_for(serving_settings(registry_home, data_db_url=url)))
    assert {e["request_id"]: e["model_version"] for e in events} == answered and len(events) == 580


def test_a_shadow_prices_the_answered_listings_as_its_own_predict_would(
    registry_home: Path, registry_env: dict[str, str]
) -> None:
    """Another version in shadow (MLOPS_API_SHADOW=version:N, share 1): every answered listing
    also carries its price, equal to that version's own predict; refusals carry none; `mlops
    models compare` reports the evidence."""
    import json

    from mlops_cli.registry.models import alias_state, list_versions
    from serving.model_server import load_registered
    from tests.conftest import run_mlops

    base = serving_settings(registry_home)
    champion = alias_state(base).champion
    other = next(v["version"] for v in list_versions(base) if v["version"] != champion)
    settings = serving_settings(registry_home, api_shadow=f"version:{other}", api_shadow_share=1.0)
    app = create_app(settings)
    listings = training_listings(registry_home, 12)
    with TestClient(app) as client:
        assert wait_until_loaded(app.state.holder, 60) is not None
        assert wait_until_loaded(app.state.shadow, 60) is not None, app.state.shadow.last_error
        sent = [
            client.post("/predict", json=listings[:5]),
            client.post("/predict", json=listings[5:]),
            client.post("/predict", json={**LISTING, "bed": -1}),
        ]
        assert [r.status_code for r in sent] == [200, 200, 422]
        ids = [r.headers["x-request-id"] for r in sent]
    mine = [e for e in read_events(engine_for(settings)) if e["request_id"] in ids]
    answered = sorted((e for e in mine if e["status"] == 200), key=lambda e: (ids.index(e["request_id"]), e["item"]))
    assert len(answered) == 12 and {e["shadow_version"] for e in answered} == {other}
    own = load_registered(settings, other).predict(listings)
    assert [e["shadow_prediction"] for e in answered] == pytest.approx(own, rel=1e-9)
    assert [e["prediction"] for e in answered] != pytest.approx(own, rel=1e-6), "two versions, two prices"
    assert all(e["shadow_ms"] > 0 for e in answered)
    (refused,) = [e for e in mine if e["status"] == 422]
    assert refused["shadow_version"] is None and refused["shadow_prediction"] is None

    compared = run_mlops("models", "compare", str(champion), str(other), "--json", env=registry_env)
    assert compared.returncode == 0, compared.stderr
    evidence = json.loads(compared.stdout)["shadow"]
    assert (evidence["served"], evidence["shadow"]) == (champion, other)
    assert evidence["requests"] >= 2 and evidence["listings"] >= 12 and evidence["mean_abs_disagreement"] > 0
    text = run_mlops("models", "compare", str(champion), str(other), env=registry_env).stdout
    assert f"v{other} in shadow of v{champion}" in text


@pytest.mark.slow
def test_a_kill_9_loses_only_the_events_of_the_last_flush_interval(
    registry_env: dict[str, str], registry_home: Path, tmp_path: Path
) -> None:
    """What `kill -9` costs, measured: requests keep coming, the API is killed outright, and every
    answered request whose event is missing was answered within one flush interval (plus the
    write in progress) of the kill."""
    import os
    import signal
    import time

    import httpx

    from mlops_cli.ops.netutil import free_port
    from mlops_cli.ops.services import mlops_command
    from tests.conftest import start_logged, wait_http

    interval = 0.5
    url = f"sqlite:///{tmp_path / 'events.db'}"
    env = {**registry_env, "MLOPS_DATA_DB_URL": url, "MLOPS_API_EVENTS_FLUSH_INTERVAL": str(interval)}
    port = free_port()
    process = start_logged(mlops_command("serve", "--port", str(port)), env, tmp_path / "api.log")
    api = f"http://127.0.0.1:{port}"
    answered: dict[str, float] = {}
    try:
        wait_http(f"{api}/health/ready", process=process, ready=lambda r: r.status_code == 200)
        with httpx.Client(timeout=30) as client:
            start = time.monotonic()
            while time.monotonic() - start < 3:
                response = client.post(f"{api}/predict", json=LISTING)
                assert response.status_code == 200
                answered[response.headers["x-request-id"]] = time.monotonic()
        killed = time.monotonic()
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    stored = {e["request_id"] for e in read_events(engine_for(serving_settings(registry_home, data_db_url=url)))}
    lost = {rid: killed - at for rid, at in answered.items() if rid not in stored}
    assert stored <= set(answered) and len(stored) > len(answered) / 2
    assert all(age <= 2 * interval for age in lost.values()), sorted(lost.values())[-3:]
