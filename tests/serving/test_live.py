"""The inference API as a real uvicorn process: reloads under load, MLflow outages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlops_cli.netutil import free_port
from mlops_cli.registry import alias_state, list_versions
from tests.conftest import serving_settings, wait_http
from tests.serving.test_api import LISTING, TOKEN

pytestmark = pytest.mark.slow


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            args, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def api(registry_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = start(
        [sys.executable, "-m", "mlops_cli.cli.main", "serve", "--port", str(port)], registry_env, tmp_path / "api.log"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health/live", process=process)
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/health/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        yield url
    finally:
        stop_group(process)


def runs(values: list[int]) -> list[int]:
    """[3, 3, 2, 2, 3] → [3, 2, 3]"""
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


def test_reload_under_load_drops_nothing_and_switches_once_per_promotion(api: str, registry_home: Path) -> None:
    from mlops_cli.promote import promote_if_better

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

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        for target in (second, first):
            time.sleep(0.5)
            promote_if_better(settings, target, force=True, who="test")
            for _ in range(3):
                answer = httpx.post(f"{api}/load_model", headers=TOKEN, timeout=60)
                assert answer.status_code == 200 and answer.json()["loaded"]["version"] == target
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join()
    assert len(seen) > 50
    assert [status for status, _ in seen if status != 200] == []
    assert runs([version for _, version in seen]) == [first, second, first]


def test_starts_without_mlflow_and_becomes_ready_when_it_arrives(registry_env: dict[str, str], tmp_path: Path) -> None:
    mlflow_port, api_port = free_port(), free_port()
    env = {**registry_env, "MLOPS_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}"}
    api = start(
        [sys.executable, "-m", "mlops_cli.cli.main", "serve", "--port", str(api_port)], env, tmp_path / "api.log"
    )
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
        mlflow = start(
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

        stop_group(mlflow)  # once loaded, an MLflow outage does not stop serving
        assert httpx.get(f"{url}/health/ready").status_code == 200
        assert httpx.post(f"{url}/predict", json=LISTING).status_code == 200
        failed = httpx.post(f"{url}/load_model", headers=TOKEN, timeout=120)
        assert failed.status_code == 503 and "still serving" in failed.json()["detail"]
        assert httpx.post(f"{url}/predict", json=LISTING).status_code == 200
    finally:
        stop_group(api)
        if mlflow is not None:
            stop_group(mlflow)
