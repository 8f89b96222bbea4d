"""Shared fixtures: an isolated MLOPS_HOME per test, the CLI as a subprocess, real servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from mlops_cli.netutil import free_port
from mlops_cli.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
# One valid listing, as a data source would send it.
ROW = {
    "price": 250000,
    "bed": 3,
    "bath": 2,
    "acre_lot": 0.2,
    "city": "Austin",
    "state": "Texas",
    "zip_code": "78701",
    "house_size": 1500,
}


class FixedSource:
    """A replayable source serving the batches it was given (to inject malformed or tricky ones)."""

    name = "fixed"
    kind = "fixed"
    replayable = True

    def __init__(self, batches: dict[int, object]) -> None:
        self.batches = batches

    def identity(self) -> str:
        return "fixed"

    def numbers(self) -> list[int]:
        return sorted(self.batches)

    def fetch(self, batch: int | None = None):  # noqa: ANN201 - an Answer
        from mlops_cli.sources import Answer

        number = self.numbers()[0] if batch is None else batch
        return Answer(number, self.batches[number])

    def restart(self) -> None:
        pass


def pipeline_with(settings: Settings, source: object):  # noqa: ANN201 - a Pipeline
    """The engine's pipeline for ``settings``, reading ``source`` instead of MLOPS_DATA_SOURCE."""
    from mlops_cli.engine import claim_dataset, open_pipeline

    pipe = open_pipeline(settings, reload_api=False)
    pipe.source = source
    claim_dataset(pipe)
    return pipe


def good_rows(n: int, start: int = 0) -> list[dict]:
    """``n`` distinct valid listings."""
    return [{**ROW, "price": 200_000 + 1_000 * i, "house_size": 1000 + i} for i in range(start, start + n)]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder with MLOPS_HOME inside; no inherited MLOPS_* settings."""
    for key in list(os.environ):
        if key.startswith("MLOPS_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    state = tmp_path / ".mlops"
    monkeypatch.setenv("MLOPS_HOME", str(state))
    # Nothing listens here: reload requests fail fast and must only warn.
    monkeypatch.setenv("MLOPS_API_URL", f"http://127.0.0.1:{free_port()}")
    from mlops_cli import storage

    storage._engines.clear()
    return state


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler for the tests' small loopback servers: JSON answers, no access log."""

    def answer(self, status: int, body: str | dict) -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def serve_in_thread(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``handler`` on a free loopback port from a daemon thread; returns (server, URL)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


COURSE_END = "Ya se recolectó toda la información mínima necesaria"


class CourseServer:
    """A faithful stand-in of the course's realtor data API, on loopback.

    ``GET /data?group_number=G`` (no ``day``) answers the current batch, a fresh random sample of
    ``share`` of it each call; the batch number advances only on the first call after ``window``
    seconds; after the last batch it answers one 500, then ``400 {"detail": COURSE_END}`` for
    ever; an unknown group is ``400 {"detail": "Número de grupo inválido"}``. Records every query.
    """

    def __init__(self, batches: list[list[dict]], window: float, share: float = 1.0) -> None:
        import random
        from urllib.parse import parse_qs, urlparse

        self.queries: list[str] = []
        state = {"batch": -1, "since": 0.0, "failed_once": False}
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.queries.append(self.path)
                url = urlparse(self.path)
                group = parse_qs(url.query).get("group_number", [""])[0]
                if url.path == "/restart_data_generation":
                    state.update(batch=-1, since=0.0, failed_once=False)
                    self.answer(200, {"ok": True})
                    return
                if group not in {str(g) for g in range(1, 11)}:
                    self.answer(400, {"detail": "Número de grupo inválido"})
                    return
                if state["batch"] < 0 or time.monotonic() - state["since"] > window:
                    state.update(batch=state["batch"] + 1, since=time.monotonic())
                if state["batch"] >= len(batches):
                    if not state["failed_once"]:
                        state["failed_once"] = True
                        self.answer(500, "Internal Server Error")
                        return
                    self.answer(400, {"detail": COURSE_END})
                    return
                rows = batches[state["batch"]]
                sample = rows if share >= 1 else random.sample(rows, max(1, round(len(rows) * share)))
                self.answer(200, {"group_number": int(group), "batch_number": state["batch"], "data": sample})

        self.server, self.url = serve_in_thread(Handler)


def course_batches(batches: int = 3, rows: int = 300) -> list[list[dict]]:
    """Generator listings as the course server sends them: zip codes and broker ids as floats."""
    from mlops_cli.settings import load_settings
    from mlops_cli.sources import GeneratorSource

    source = GeneratorSource(load_settings(generator_batches=batches, generator_batch_rows=rows))
    out = []
    for number in range(batches):
        listings = source.rows(number)
        for row in listings:
            for key in ("zip_code", "brokered_by"):
                if isinstance(row.get(key), str) and row[key].isdigit():
                    row[key] = float(row[key])
        out.append(listings)
    return out


@pytest.fixture
def course_server() -> Iterator[Callable[..., CourseServer]]:
    servers: list[CourseServer] = []

    def start(batches: list[list[dict]], window: float, share: float = 1.0) -> CourseServer:
        servers.append(CourseServer(batches, window, share))
        return servers[-1]

    yield start
    for server in servers:
        server.server.shutdown()


def small_generator_env(monkeypatch: pytest.MonkeyPatch, batches: int = 5, rows: int = 300) -> None:
    monkeypatch.setenv("MLOPS_GENERATOR_BATCHES", str(batches))
    monkeypatch.setenv("MLOPS_GENERATOR_BATCH_ROWS", str(rows))


def run_mlops(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real `mlops` command in a child process, with the test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "mlops_cli.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def run_json(*args: str, env: dict[str, str] | None = None) -> object:
    result = run_mlops(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_http(url: str, timeout: float = 60, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def data_server(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Starts `mlops data serve` on a free loopback port (small generator unless ``env`` says
    otherwise); returns its URL. ``flags`` go to the command (e.g. ``--release-window 2``)."""
    small_generator_env(monkeypatch)
    processes: list[subprocess.Popen] = []

    def start(*flags: str, **env: str) -> str:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "mlops_cli.cli.main", "data", "serve", "--port", str(port), *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", process=process)
        return url

    yield start
    for process in processes:
        stop(process)


@pytest.fixture
def data_api(data_server: Callable[..., str]) -> str:
    """`mlops data serve` on a free loopback port (small generator, no release window); its URL."""
    return data_server()


# --- real database servers of the dev/CI machines -------------------------------------------


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the machine's server, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    name = f"mlops_{uuid.uuid4().hex[:10]}"
    admin = os.environ.get("MLOPS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        from mlops_cli import storage

        for url, engine in list(storage._engines.items()):
            if name in url:
                engine.dispose()
                storage._engines.pop(url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh MariaDB database on the machine's server, dropped afterwards."""
    pymysql = pytest.importorskip("pymysql")
    name = f"mlops_{uuid.uuid4().hex[:10]}"
    host = os.environ.get("MLOPS_TEST_MARIADB_HOST", "127.0.0.1")
    conn = pymysql.connect(host=host, port=3306, user="root", password="", autocommit=True)
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    try:
        yield f"mysql+pymysql://root@{host}:3306/{name}"
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


# --- a registry trained once by the core loop, for serving, UI and observability tests ----------


@pytest.fixture(scope="session")
def registry_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs the loop once: at least two versions of house_prices, a champion."""
    home = tmp_path_factory.mktemp("registry") / ".mlops"
    settings = serving_settings(home)
    from mlops_cli.engine import run
    from mlops_cli.registry import list_versions
    from mlops_cli.storage import engine_for

    run(settings, reload_api=False)
    if len(list_versions(settings)) < 2:
        train_extra_version(settings, model_type="ridge")
    engine_for(settings).dispose()
    return home


def train_extra_version(settings: Settings, model_type: str = "ridge", batches: list[int] | None = None) -> int:
    """Register one more version, fitted on the stored clean rows (of ``batches``), outside the loop."""
    from mlops_cli.engine import open_pipeline
    from mlops_cli.storage import clean_data, read_table
    from mlops_cli.train import train_and_register

    pipe = open_pipeline(settings)
    rows = read_table(pipe.engine, clean_data)
    if batches is not None:
        rows = rows[rows["batch"].isin(batches)]
    client, experiment_id = pipe.mlflow
    used = sorted(set(rows["batch"].astype(int)))
    return train_and_register(
        client,
        settings,
        experiment_id,
        train=rows[rows["split"] == "train"],
        test=rows[rows["split"] == "test"],
        tags={"batch": str(used[-1]), "batches": ",".join(map(str, used))},
        run_name=f"extra-{model_type}",
        model_type=model_type,
    ).version


def serving_settings(home: Path, **extra: object) -> Settings:
    values = {
        "home": home,
        "generator_batches": 4,
        "generator_batch_rows": 400,
        "generator_price_drift": 0.3,
        "api_watch_interval": 0,
        "api_retry_interval": 0.2,
        "api_token": "test-token-" + "x" * 20,
        **extra,
    }
    return load_settings(**values)


@pytest.fixture
def registry_env(registry_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Environment for a child process serving from the shared registry."""
    for key in list(os.environ):
        if key.startswith("MLOPS_"):
            monkeypatch.delenv(key)
    env = {
        "MLOPS_HOME": str(registry_home),
        "MLOPS_API_TOKEN": "test-token-" + "x" * 20,
        "MLOPS_API_WATCH_INTERVAL": "0",
        "MLOPS_API_RETRY_INTERVAL": "0.2",
    }
    yield env
