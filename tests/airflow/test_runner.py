"""`mlops up --with airflow` and `mlops train --runner airflow` against a real Airflow 3
(`airflow standalone`) started by the stack on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_cli.netutil import free_port, port_is_free
from tests.conftest import run_mlops
from tests.test_stack import alive, our_pids, stack_env  # noqa: F401

pytest.importorskip("airflow")
pytestmark = pytest.mark.slow


def test_train_with_the_airflow_runner(home: Path, stack_env: dict[str, str], monkeypatch) -> None:  # noqa: F811, ANN001
    monkeypatch.setenv("MLOPS_AIRFLOW_PORT", str(free_port()))
    monkeypatch.setenv("MLOPS_GENERATOR_BATCHES", "2")
    started = run_mlops("up", "--with", "airflow")
    assert started.returncode == 0, started.stderr
    status = {s["service"]: s for s in json.loads(run_mlops("status", "--json").stdout)}
    assert status["airflow"]["healthy"], status["airflow"]

    one = run_mlops("train", "--runner", "airflow", "--batch", "0", "--json")
    assert one.returncode == 0, one.stderr
    first = json.loads(one.stdout)
    assert [b["batch"] for b in first] == [0]
    assert first[0]["retrained"] and first[0]["version"] == 1 and first[0]["champion_version"] == 1

    rest = run_mlops("train", "--runner", "airflow", "--all", "--json")
    assert rest.returncode == 0, rest.stderr
    batches = json.loads(rest.stdout)
    assert [b["batch"] for b in batches] == [1]
    assert set(batches[0]) == set(first[0])
    local_view = json.loads(run_mlops("models", "list", "--json").stdout)
    assert [v["version"] for v in local_view] == [b["version"] for b in first + batches if b["version"]]

    api = next(s for s in json.loads(run_mlops("status", "--json").stdout) if s["service"] == "api")
    champion = batches[-1]["champion_version"]
    assert f"serving v{champion}" in api["detail"], "the DAG's reload task reached the stack's API"

    pids = our_pids(home)
    assert run_mlops("down").returncode == 0
    assert not any(alive(pid) for pid in pids)
    assert port_is_free("127.0.0.1", int(stack_env["MLOPS_API_PORT"]))


def test_airflow_runner_without_airflow_is_a_clear_error(home: Path) -> None:
    result = run_mlops(
        "train", "--runner", "airflow", "--all", env={"MLOPS_AIRFLOW_URL": f"http://127.0.0.1:{free_port()}"}
    )
    assert result.returncode == 1 and "is not reachable" in result.stderr and "--with airflow" in result.stderr
