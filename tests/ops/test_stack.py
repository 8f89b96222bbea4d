"""`mlops up/down/status/logs` with real processes: MLflow server, data API, inference API, Prometheus."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mlops_cli.ops.netutil import port_is_free
from tests.conftest import alive, our_pids, run_mlops

pytestmark = pytest.mark.slow
SERVICES = {"mlflow", "data-api", "api", "ui", "prometheus"}


def check_mlflow_wants_a_login(home: Path, url: str) -> None:
    """MLflow's basic-auth app: anonymous or wrong credentials get 401 on the REST API and the UI;
    the admin generated into MLOPS_HOME (0600) gets in; the health probe stays open."""
    admin = json.loads((home / "mlflow_admin.json").read_text())
    search = f"{url}/api/2.0/mlflow/registered-models/search"
    assert httpx.get(search).status_code == 401
    assert httpx.post(f"{url}/api/2.0/mlflow/experiments/create", json={"name": "x"}).status_code == 401
    assert httpx.get(f"{url}/").status_code == 401
    assert httpx.get(search, auth=(admin["username"], "wrong-password")).status_code == 401
    assert httpx.get(search, auth=(admin["username"], admin["password"])).status_code == 200
    assert httpx.get(f"{url}/health").status_code == 200
    assert (home / "mlflow_admin.json").stat().st_mode & 0o777 == 0o600


def check_stack_cycle(home: Path, stack_env: dict[str, str], extra_env: dict[str, str] | None = None) -> None:
    env = extra_env or {}
    started = run_mlops("up", env=env)
    assert started.returncode == 0, started.stderr + started.stdout
    pids = our_pids(home)
    checked = run_mlops("status", "--json", env=env)
    assert checked.returncode == 0, checked.stdout  # all healthy: scripts may rely on it
    status = json.loads(checked.stdout)
    assert {s["service"] for s in status} == SERVICES
    assert all(s["healthy"] for s in status), status
    check_mlflow_wants_a_login(home, next(s["url"] for s in status if s["service"] == "mlflow"))

    trained = run_mlops("train", "--all", "--json", env=env)
    assert trained.returncode == 0, trained.stderr
    assert "not reachable" not in trained.stderr, "the stack's API must take the reload"
    champion = json.loads(trained.stdout)["batches"][-1]["champion_version"]
    predicted = run_mlops(
        "predict",
        "-s",
        "city=Austin",
        "-s",
        "state=Texas",
        "-s",
        "zip_code=75003",
        "-s",
        "house_size=1800",
        "--json",
        env=env,
    )
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["model"]["version"] == champion

    api = next(s for s in json.loads(run_mlops("status", "--json", env=env).stdout) if s["service"] == "api")
    assert api["healthy"] and f"serving v{champion}" in api["detail"]

    again = run_mlops("up", env=env)
    assert again.returncode == 0 and "already running" in again.stderr
    assert our_pids(home) == pids, "up when already up starts nothing new"

    stopped = run_mlops("down", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert not any(alive(pid) for pid in pids)
    assert all(port_is_free("127.0.0.1", int(port)) for port in stack_env.values())
    assert not (home / "stack.json").exists()
    stopped = run_mlops("status", env=env)
    assert "not running" in stopped.stdout and stopped.returncode == 1


def test_up_train_predict_status_down(home: Path, stack_env: dict[str, str]) -> None:
    check_stack_cycle(home, stack_env)
    logs = run_mlops("logs", "api", "-n", "500")
    assert logs.returncode == 0 and "starting:" in logs.stdout and "mlops_cli serve" in logs.stdout
    # the API's own story: started, then each model it served (not "no model yet" forever)
    assert "inference API starting: model house_prices@champion" in logs.stdout
    assert re.search(r"serving house_prices (v\d+ → )?v\d+ \(champion, fast path\)", logs.stdout), logs.stdout


@pytest.mark.external_db
def test_the_same_with_mlflow_on_mariadb(home: Path, stack_env: dict[str, str], mariadb_url: str) -> None:
    check_stack_cycle(home, stack_env, {"MLOPS_MLFLOW_TRACKING_URI": mariadb_url})


def test_a_taken_port_names_the_port_and_the_service(home: Path, stack_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(stack_env["MLOPS_API_PORT"])))
        taken.listen()
        result = run_mlops("up")
    assert result.returncode == 1
    port = stack_env["MLOPS_API_PORT"]
    assert f"port {port} on 127.0.0.1 is already in use; the api service wanted it" in result.stderr
    assert "MLOPS_API_PORT" in result.stderr
    assert not (home / "stack.json").exists() or json.loads((home / "stack.json").read_text())["services"] == {}


def test_a_service_that_dies_on_start_shows_its_log_and_stops_the_others(home: Path, stack_env: dict[str, str]) -> None:
    # The data API's source file does not exist: that service exits during start.
    result = run_mlops("up", env={"MLOPS_DATA_SOURCE": f"csv:{home}/missing.csv"})
    assert result.returncode == 1
    assert "the data-api service exited while starting" in result.stderr
    assert "--- last lines of" in result.stderr and "data-api.log" in result.stderr
    assert "data file not found" in result.stderr, "its own last log lines say why"
    assert json.loads((home / "stack.json").read_text())["services"] == {}
    for key, port in stack_env.items():
        assert port_is_free("127.0.0.1", int(port)), f"{key} still bound"


def test_logs_of_an_unknown_service(home: Path) -> None:
    result = run_mlops("logs", "nope")
    assert result.returncode == 1 and "unknown service 'nope'" in result.stderr


def test_down_never_kills_a_process_it_did_not_start(home: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        home.mkdir(parents=True, exist_ok=True)
        fake = {
            "name": "api",
            "pid": stranger.pid,
            "start_time": "1",
            "host": "127.0.0.1",
            "port": 1,
            "log": "x",
            "url": "http://127.0.0.1:1",
            "health_url": "http://127.0.0.1:1/health",
            "command": [],
        }
        (home / "stack.json").write_text(json.dumps({"services": {"api": fake}}))
        assert run_mlops("down").returncode == 0
        assert stranger.poll() is None, "a recycled pid must not be killed"
    finally:
        stranger.kill()
        stranger.wait()


def test_up_train_is_the_readme_main_job(home: Path, stack_env: dict[str, str], monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("MLOPS_MODEL")  # the README's command, with the product's default model (auto)
    result = run_mlops("up", "--train", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    batches = report["train"]["batches"]
    assert [b["batch"] for b in batches] == list(range(5)) and any(b["retrained"] for b in batches)
    champion = batches[-1]["champion_version"]
    assert report["train"]["prediction"]["model"] == {"name": "house_prices", "version": champion, "alias": "champion"}
    api = next(s for s in report["services"] if s["service"] == "api")
    assert api["healthy"] and f"serving v{champion}" in api["detail"]
    shown = json.loads(run_mlops("models", "show", "champion", "--json").stdout)
    from mlops_cli.pipeline.fit import CANDIDATES

    assert shown["model_type"] in CANDIDATES, "chosen by auto"
    assert set(shown["validation_rmse"]) == set(CANDIDATES)
    table = run_mlops("up", "--train")
    assert table.returncode == 0 and "where to look:" in table.stdout and "already running" in table.stderr
    assert "80% range $" in table.stdout, "the prediction comes with its calibrated range"
    # the README's "Then try" block, pasted as a new user would (on the stack `up --train` left)
    tried = {}
    for line in then_try_block():
        tried[line] = run_mlops(*shlex.split(line)[1:])
        assert tried[line].returncode == 0, (line, tried[line].stdout, tried[line].stderr)
    explained = next(result for line, result in tried.items() if "--explain" in line)
    assert "cannot explain" not in explained.stderr and "house_size" in explained.stdout, "auto's champion explains"
    # `mlops train --all` goes on with the stack's data API, the dataset's own source
    assert "source: http://127.0.0.1:" in tried["mlops train --all"].stdout
    assert "no new batches" in tried["mlops train --all"].stdout


def then_try_block() -> list[str]:
    """The commands of the README's "Then try:" block, comments stripped."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("Then try:", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    assert lines and all(line.startswith("mlops ") for line in lines if line)
    return [line for line in lines if line]


@pytest.mark.external_db
def test_secrets_stay_off_command_lines_and_logs_and_files_stay_private(
    home: Path, stack_env: dict[str, str], postgres_url: str
) -> None:
    """A tracking DB password reaches `mlflow server` through its environment only: not in any
    process's command line, not in stack.json or the logs; everything under MLOPS_HOME is the
    owner's only. (The machine's PostgreSQL trusts local connections: the password is carried,
    not checked.)"""
    password = "pw-that-must-not-leak"
    tracking = postgres_url.replace("postgres@", f"postgres:{password}@")
    # no watchdog here: the UI is killed below to see `status` report it down
    started = run_mlops("up", env={"MLOPS_MLFLOW_TRACKING_URI": tracking, "MLOPS_STACK_MAX_RESTARTS": "0"})
    assert started.returncode == 0, started.stderr + started.stdout
    leaks = []
    admin = json.loads((home / "mlflow_admin.json").read_text())["password"]
    for pid in our_pids(home):
        pgid = os.getpgid(pid)
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and os.getpgid(int(proc.name)) == pgid:
                    command = (proc / "cmdline").read_bytes().decode(errors="replace")
                    if password in command or admin in command:
                        leaks.append(f"command line of {proc.name}")
            except (ProcessLookupError, OSError):
                continue
    for path in home.rglob("*"):
        if path.is_file() and path.suffix in (".log", ".json") and password in path.read_text(errors="replace"):
            leaks.append(str(path.relative_to(home)))
    # nor the MLflow admin's password: in its own file (0600) and in processes' environments only
    for path in [*home.rglob("*.log"), home / "stack.json"]:
        if admin in path.read_text(errors="replace"):
            leaks.append(f"{path.relative_to(home)} holds the MLflow admin password")
    assert not leaks
    exposed = [
        str(p.relative_to(home)) for p in [home, *home.rglob("*")] if not p.is_symlink() and p.stat().st_mode & 0o077
    ]
    assert not exposed, f"readable by others: {exposed}"

    ui = json.loads((home / "stack.json").read_text())["services"]["ui"]["pid"]
    os.killpg(os.getpgid(ui), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while alive(ui) and time.monotonic() < deadline:
        time.sleep(0.2)
    checked = run_mlops("status", "--json", env={"MLOPS_MLFLOW_TRACKING_URI": tracking})
    assert checked.returncode == 1, "a service is down: status must say so in its exit code"
    assert [s["service"] for s in json.loads(checked.stdout) if not s["healthy"]] == ["ui"]
    assert run_mlops("down", env={"MLOPS_MLFLOW_TRACKING_URI": tracking}).returncode == 0
