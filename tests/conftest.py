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
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from mlops_cli.config import Settings, load_settings
from mlops_cli.ops.netutil import free_port
from mlops_cli.ops.services import mlops_command

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

    def fetch(self, batch: int | None = None):
        from mlops_cli.pipeline.sources import Answer

        number = self.numbers()[0] if batch is None else batch
        return Answer(number=number, rows=self.batches[number])

    def restart(self) -> None:
        pass


def pipeline_with(settings: Settings, source: object):
    """The engine's pipeline for ``settings``, reading ``source`` instead of MLOPS_DATA_SOURCE."""
    from mlops_cli.pipeline.dataset import claim_dataset
    from mlops_cli.pipeline.engine import open_pipeline

    pipe = open_pipeline(settings, reload_api=False)
    pipe.source = source
    claim_dataset(pipe)
    return pipe


def good_rows(n: int, start: int = 0) -> list[dict]:
    """``n`` distinct valid listings."""
    return [{**ROW, "price": 200_000 + 1_000 * i, "house_size": 1000 + i} for i in range(start, start + n)]


@pytest.fixture(autouse=True)
def _reader_width_not_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing Airflow (the DAG module) sets COLUMNS=80 in the worker's environment; the
    commands a test runs would then wrap their errors as in an 80-column terminal. A test
    that wants a width sets COLUMNS itself."""
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder with MLOPS_HOME inside; no inherited MLOPS_* settings."""
    for key in list(os.environ):
        if key.startswith("MLOPS_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    # Tests pin the model they exercise (the seed recipe: fast, folded, snapshot-stable); the
    # default, auto, is run by the README's main-job test and the model tests.
    monkeypatch.setenv("MLOPS_MODEL", "linear")
    # Likewise the retraining triggers: the generator's prices drift every batch, which degrades
    # the champion past the default threshold on each, so every batch would train. Tests keep the
    # new-row share and drift deciding; the degradation trigger is exercised where it is the
    # subject (pipeline/test_audit.py) and, at its default, by the README's main-job test.
    monkeypatch.setenv("MLOPS_RETRAIN_MAX_DEGRADATION", "100")
    state = tmp_path / ".mlops"
    monkeypatch.setenv("MLOPS_HOME", str(state))
    # Nothing listens here: reload requests fail fast and must only warn.
    monkeypatch.setenv("MLOPS_API_URL", f"http://127.0.0.1:{free_port()}")
    from mlops_cli.store import db as storage

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

    ``repeats``: each batch is also answered at least that many times again before the next one
    (the real window is 300 s, so clients always see repeats; a test's short window alone would
    let a slow machine miss them).
    """

    def __init__(self, batches: list[list[dict]], window: float, share: float = 1.0, repeats: int = 0) -> None:
        import random
        from urllib.parse import parse_qs, urlparse

        self.queries: list[str] = []
        state = {"batch": -1, "since": 0.0, "failed_once": False, "answers": 0}
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server.queries.append(self.path)
                url = urlparse(self.path)
                group = parse_qs(url.query).get("group_number", [""])[0]
                if url.path == "/restart_data_generation":
                    state.update(batch=-1, since=0.0, failed_once=False, answers=0)
                    self.answer(200, {"ok": True})
                    return
                if group not in {str(g) for g in range(1, 11)}:
                    self.answer(400, {"detail": "Número de grupo inválido"})
                    return
                released = time.monotonic() - state["since"] > window and state["answers"] > repeats
                if state["batch"] < 0 or released:
                    state.update(batch=state["batch"] + 1, since=time.monotonic(), answers=0)
                state["answers"] += 1
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
    from mlops_cli.config import load_settings
    from mlops_cli.pipeline.sources import GeneratorSource

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

    def start(batches: list[list[dict]], window: float, share: float = 1.0, repeats: int = 0) -> CourseServer:
        servers.append(CourseServer(batches, window, share, repeats))
        return servers[-1]

    yield start
    for server in servers:
        server.server.shutdown()


class ScriptedAPI:
    """A real HTTP server on loopback that answers /data from a script of (status, body, delay)."""

    def __init__(self, script: list[tuple[int, str, float]]) -> None:
        self.script = list(script)
        self.calls: list[str] = []
        api = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                api.calls.append(self.path)
                status, body, delay = api.script.pop(0) if api.script else (400, '{"detail": "done"}', 0)
                time.sleep(delay)
                self.answer(status, body)

        self.server, self.url = serve_in_thread(Handler)


@pytest.fixture
def scripted() -> Iterator[type[ScriptedAPI]]:
    servers: list[ScriptedAPI] = []

    def make(script: list[tuple[int, str, float]]) -> ScriptedAPI:
        servers.append(ScriptedAPI(script))
        return servers[-1]

    yield make
    for server in servers:
        server.server.shutdown()


@contextmanager
def executed(engine) -> Iterator[list[str]]:
    """Every SQL statement run on ``engine`` inside the block, in order."""
    from sqlalchemy import event

    statements: list[str] = []

    def listener(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def batch_body(number: int) -> str:
    return json.dumps({"group_number": 1, "day": "Tuesday", "batch_number": number, "data": [ROW]})


def small_generator_env(monkeypatch: pytest.MonkeyPatch, batches: int = 5, rows: int = 300) -> None:
    monkeypatch.setenv("MLOPS_GENERATOR_BATCHES", str(batches))
    monkeypatch.setenv("MLOPS_GENERATOR_BATCH_ROWS", str(rows))


def run_mlops(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real `mlops` command in a child process, with the test's environment."""
    return subprocess.run(
        [*mlops_command(), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def run_json(*args: str, env: dict[str, str] | None = None) -> object:
    result = run_mlops(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_http(
    url: str,
    timeout: float = 60,
    process: subprocess.Popen | None = None,
    ready: Callable[[httpx.Response], bool] = lambda response: response.status_code < 500,
) -> None:
    """Wait until ``url`` answers as ``ready`` says; fail loudly (with why) if it never does."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            response = httpx.get(url, timeout=2)
            if ready(response):
                return
            last = f"HTTP {response.status_code} {response.text[:300]}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s: {last}")


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
            [*mlops_command(), "data", "serve", "--port", str(port), *flags],
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
        from mlops_cli.store import db as storage

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
    from mlops_cli.pipeline.train import run
    from mlops_cli.registry.models import list_versions
    from mlops_cli.store.db import engine_for

    run(settings, reload_api=False)
    if len(list_versions(settings)) < 2:
        train_extra_version(settings, model_type="ridge")
    engine_for(settings).dispose()
    return home


def copy_home(source: Path, target: Path) -> None:
    """Copy a state folder that this process may hold open: its SQLite databases through SQLite's
    backup API (a consistent copy, write-ahead log included), every other file as it is.

    Not ``shutil.copytree``: opening and closing a database's files outside SQLite drops every
    POSIX lock this process holds on them (sqlite.org/howtocorrupt.html, 2.2), and on a database in
    write-ahead mode another process then resets the shared memory that this one still uses."""
    import shutil
    import sqlite3

    def databases_apart(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n.endswith((".db", ".db-wal", ".db-shm", ".db-journal"))]

    shutil.copytree(source, target, ignore=databases_apart)
    for database in source.rglob("*.db"):
        read = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        copy = sqlite3.connect(target / database.relative_to(source))
        try:
            read.backup(copy)
        finally:
            copy.close()
            read.close()


def train_extra_version(settings: Settings, model_type: str = "ridge", batches: list[int] | None = None) -> int:
    """Register one more version, fitted on the stored clean rows (of ``batches``), outside the loop."""
    from mlops_cli.pipeline.engine import open_pipeline
    from mlops_cli.pipeline.fit import train_and_register
    from mlops_cli.store.frames import read_table
    from mlops_cli.store.tables import clean_data

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
        "model": "linear",  # pinned, as the home fixture does; a test passes model= to choose
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


# --- the inference API as a real uvicorn process, on the shared registry ------------------------

LISTING = {
    "city": "Austin",
    "state": "texas",
    "zip_code": 75003,
    "house_size": 1800,
    "bed": 3,
    "bath": 2,
    "acre_lot": 0.25,
}
TOKEN = {"Authorization": "Bearer test-token-" + "x" * 20}


def start_logged(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A server in its own session (so its whole group can be stopped), logging to ``log``."""
    with log.open("w") as out:
        return subprocess.Popen(
            args, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_group(process: subprocess.Popen) -> None:
    """Stop a process started in its own session, and its children, as `mlops down` does."""
    from mlops_cli.ops.processes import stop_process_groups

    stop_process_groups([process.pid], timeout=20)
    process.wait()


@pytest.fixture
def api(registry_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = start_logged(mlops_command("serve", "--port", str(port)), registry_env, tmp_path / "api.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health/ready", process=process, ready=lambda r: r.status_code == 200)
        yield url
    finally:
        stop_group(process)


# --- Airflow, in an environment of its own ----------------------------------------------------------

# Airflow pins FastAPI (< 0.137) and more: installed beside the project it would make the suite run
# a FastAPI that `pip install -e '.[ui]'` users never get. Its tests run it from a venv layered on
# this environment (--system-site-packages: the project and everything else come from here; only
# Airflow and its pins go into the venv), built once and reused while the requirement is unchanged.
AIRFLOW_VENV = Path(os.environ.get("MLOPS_TEST_AIRFLOW_VENV", REPO / ".venv-airflow"))


def airflow_requirements() -> list[str]:
    """The project's ``airflow`` extra, as pyproject.toml declares it."""
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["airflow"]


@pytest.fixture(scope="session")
def airflow_bin() -> Path:
    """The ``bin`` folder of the Airflow test environment (``airflow``, its ``python``)."""
    from filelock import FileLock

    requirements = airflow_requirements()
    requirement = "\n".join(requirements)
    stamp = AIRFLOW_VENV / "mlops-requirement.txt"
    with FileLock(f"{AIRFLOW_VENV}.lock"):  # xdist workers: one builds, the others wait and reuse
        if not stamp.exists() or stamp.read_text() != requirement:
            made = subprocess.run(
                [sys.executable, "-m", "venv", "--clear", "--system-site-packages", str(AIRFLOW_VENV)],
                capture_output=True,
                text=True,
            )
            assert made.returncode == 0, made.stderr[-2000:]
            installed = subprocess.run(
                [str(AIRFLOW_VENV / "bin" / "python"), "-m", "pip", "install", "-q", *requirements],
                capture_output=True,
                text=True,
                timeout=1800,
            )
            if installed.returncode != 0:
                pytest.fail(f"could not build the Airflow test environment:\n{installed.stderr[-3000:]}")
            stamp.write_text(requirement)
    return AIRFLOW_VENV / "bin"


# --- the local stack -----------------------------------------------------------------------------


@pytest.fixture
def stack_env(home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every service on its own free port; the stack is taken down whatever the test did."""
    small_generator_env(monkeypatch)
    ports = {f"MLOPS_{name}_PORT": str(free_port()) for name in ("MLFLOW", "DATA_API", "API", "UI", "PROMETHEUS")}
    for key, value in ports.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLOPS_API_URL")  # follows MLOPS_API_PORT
    monkeypatch.setenv("MLOPS_STACK_START_TIMEOUT", "180")
    yield ports
    run_mlops("down")


def our_pids(home: Path) -> list[int]:
    state = json.loads((home / "stack.json").read_text())
    return [service["pid"] for service in state["services"].values()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def event_row(
    request_id: str,
    at: object,
    *,
    status: int = 200,
    version: int | None = 1,
    path: str = "fast",
    item: int | None = 0,
    listing: str | None = "{}",
    prediction: float | None = 1.0,
    unseen: str | None = "[]",
    error_kind: str | None = None,
    error: str | None = None,
    shadow: tuple = (None, None, None),  # shadow_version, shadow_prediction, shadow_ms
) -> tuple:
    """One row of ``inference_events`` as the API's writer makes it (EVENT_COLUMNS order)."""
    model = ("house_prices", version, "champion", path) if version is not None else (None,) * 4
    head = (request_id, at, "/predict", status, error_kind, error, *model, 1.0)
    return (*head, item, listing, prediction, unseen, *shadow)
