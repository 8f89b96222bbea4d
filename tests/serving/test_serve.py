"""`mlops serve`: the inference API as a real uvicorn process — reloads under load, MLflow outages, slow clients."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from mlops_cli.ops.netutil import free_port
from mlops_cli.ops.services import mlops_command
from mlops_cli.registry.models import alias_state, list_versions
from tests.conftest import LISTING, TOKEN, serving_settings, start_logged, stop_group, wait_http

pytestmark = pytest.mark.slow


def runs(values: list[int]) -> list[int]:
    """[3, 3, 2, 2, 3] → [3, 2, 3]"""
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


def test_reload_under_load_drops_nothing_and_switches_once_per_promotion(api: str, registry_home: Path) -> None:
    from mlops_cli.pipeline.promote import promote_if_better

    settings = serving_settings(registry_home)
    first = alias_state(settings).champion
    second = next(v["version"] for v in list_versions(settings) if v["version"] != first)
    seen: list[tuple[int, int | None]] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + 120  # bounded, whatever happens
            while not stop.is_set() and time.monotonic() < deadline:
                response = client.post(f"{api}/predict", json=LISTING)
                version = response.json()["model"]["version"] if response.status_code == 200 else None
                seen.append((response.status_code, version))

    def answered_by(version: int, after: int) -> None:
        """Wait (bounded) until the hammer saw ``version`` answer after its ``after``-th request."""
        deadline = time.monotonic() + 60
        while not any(v == version for _, v in seen[after:]):
            assert time.monotonic() < deadline, f"no answer from v{version} within 60s"
            time.sleep(0.05)

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        answered_by(first, 0)
        for target in (second, first):
            promote_if_better(settings, target, force=True, who="test")
            for _ in range(3):
                answer = httpx.post(f"{api}/load_model", headers=TOKEN, timeout=60)
                assert answer.status_code == 200 and answer.json()["loaded"]["version"] == target
            answered_by(target, len(seen))
    finally:
        stop.set()
        thread.join()
    assert [status for status, _ in seen if status != 200] == []
    assert runs([version for _, version in seen]) == [first, second, first]


def test_starts_without_mlflow_and_becomes_ready_when_it_arrives(registry_env: dict[str, str], tmp_path: Path) -> None:
    mlflow_port, api_port = free_port(), free_port()
    env = {**registry_env, "MLOPS_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}"}
    api = start_logged(mlops_command("serve", "--port", str(api_port)), env, tmp_path / "api.log")
    url = f"http://127.0.0.1:{api_port}"
    mlflow = None
    try:
        wait_http(f"{url}/health/live", process=api)
        deadline = time.monotonic() + 60
        while "cannot reach MLflow" not in (not_ready := httpx.get(f"{url}/health/ready")).text:
            assert not_ready.status_code == 503 and time.monotonic() < deadline, not_ready.text
            time.sleep(0.2)
        assert not_ready.status_code == 503
        assert httpx.post(f"{url}/predict", json=LISTING).status_code == 503

        backend = f"sqlite:///{registry_env['MLOPS_HOME']}/mlflow.db"
        mlflow = start_logged(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                backend,
                "--host",
                "127.0.0.1",
                "--port",
                str(mlflow_port),
                "--workers",
                "1",
            ],
            {},
            tmp_path / "mlflow.log",
        )
        deadline = time.monotonic() + 180
        while httpx.get(f"{url}/health/ready").status_code != 200:
            assert time.monotonic() < deadline, (tmp_path / "api.log").read_text()[-2000:]
            assert mlflow.poll() is None, (tmp_path / "mlflow.log").read_text()[-2000:]
            time.sleep(0.5)
        assert httpx.post(f"{url}/predict", json=LISTING).status_code == 200
        # waiting for MLflow at start is news, not an error; the cause is said in a few words
        started = (tmp_path / "api.log").read_text().split("serving house_prices", 1)[0]
        assert " ERROR " not in started, started
        waiting = (
            f"waiting for MLflow to load house_prices@champion: cannot reach MLflow at http://127.0.0.1:{mlflow_port}"
        )
        assert f"{waiting}: connection refused — check" in started, started

        stop_group(mlflow)  # once loaded, an MLflow outage does not stop serving
        assert httpx.get(f"{url}/health/ready").status_code == 200
        assert httpx.post(f"{url}/predict", json=LISTING).status_code == 200
        failed = httpx.post(f"{url}/load_model", headers=TOKEN, timeout=120)
        assert failed.status_code == 503 and "still serving" in failed.json()["detail"]
        assert httpx.post(f"{url}/predict", json=LISTING).status_code == 200
        assert " ERROR could not load house_prices@champion: cannot reach MLflow" in (tmp_path / "api.log").read_text()
    finally:
        stop_group(api)
        if mlflow is not None:
            stop_group(mlflow)


def read_until_closed(sock: object, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection (or ``limit`` seconds pass)."""
    import socket

    assert isinstance(sock, socket.socket)
    sock.settimeout(limit)
    start, data = time.monotonic(), b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        pass
    return data, time.monotonic() - start


def test_a_body_that_trickles_is_408_and_an_idle_connection_is_closed(
    registry_env: dict[str, str], tmp_path: Path
) -> None:
    """Slow clients cannot hold connections for ever: a body not arrived within
    MLOPS_API_BODY_TIMEOUT is answered 408 and the connection closed (declared length or chunked);
    an idle keep-alive connection is closed after MLOPS_API_KEEP_ALIVE. Neither is a server error."""
    import socket

    port = free_port()
    env = {**registry_env, "MLOPS_API_BODY_TIMEOUT": "1", "MLOPS_API_KEEP_ALIVE": "1", "MLOPS_API_MAX_CONNECTIONS": "4"}
    server = start_logged(mlops_command("serve", "--port", str(port)), env, tmp_path / "api.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health/ready", process=server, ready=lambda r: r.status_code == 200)
        heads = [
            b"Content-Length: 500\r\n\r\n",
            b"Transfer-Encoding: chunked\r\n\r\n9\r\n",  # a chunk never finished
        ]
        for framing in heads:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(b"POST /predict HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n" + framing)
                sock.sendall(b'{"state":')  # ... and nothing more
                answer, waited = read_until_closed(sock, 15)
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert b"MLOPS_API_BODY_TIMEOUT" in answer and 0.8 < waited < 10, waited
        with socket.create_connection(("127.0.0.1", port)) as sock:  # a whole request, then silence
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: api\r\n\r\n")
            answer, waited = read_until_closed(sock, 15)
        assert answer.startswith(b"HTTP/1.1 200") and waited < 10, "closed after the keep-alive time"
        assert httpx.post(f"{url}/predict", json=LISTING).status_code == 200
        # MLOPS_API_MAX_CONNECTIONS: past it, uvicorn answers 503 at once instead of queueing
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        try:
            time.sleep(0.3)
            assert httpx.post(f"{url}/predict", json=LISTING).status_code == 503
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.3)
        assert httpx.post(f"{url}/predict", json=LISTING).status_code == 200
        metrics = httpx.get(f"{url}/metrics").text
        assert 'status="408"' in metrics and 'status="500"' not in metrics
    finally:
        stop_group(server)
    assert "Traceback" not in (tmp_path / "api.log").read_text()
