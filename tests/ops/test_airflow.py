"""`mlops up --with airflow` and `mlops train --runner airflow` against a real Airflow 3
(`airflow standalone`, from the Airflow test environment: conftest.airflow_bin) started by the
stack on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_cli.ops.netutil import free_port, port_is_free
from tests.conftest import alive, our_pids, run_mlops

pytestmark = pytest.mark.slow


def test_train_with_the_airflow_runner(
    home: Path, stack_env: dict[str, str], monkeypatch, tmp_path, airflow_bin: Path
) -> None:
    import os

    import pandas as pd

    from tests.conftest import good_rows

    monkeypatch.setenv("PATH", f"{airflow_bin}{os.pathsep}{os.environ['PATH']}")  # where `mlops up` finds it
    monkeypatch.setenv("MLOPS_AIRFLOW_PORT", str(free_port()))
    monkeypatch.setenv("MLOPS_GENERATOR_BATCHES", "2")
    monkeypatch.setenv("MLOPS_API_WATCH_INTERVAL", "0")  # the API moves only when asked to reload
    started = run_mlops("up", "--with", "airflow")
    assert started.returncode == 0, started.stderr
    status = {s["service"]: s for s in json.loads(run_mlops("status", "--json").stdout)}
    assert status["airflow"]["healthy"], status["airflow"]

    one = run_mlops("train", "--runner", "airflow", "--batch", "0", "--json")
    assert one.returncode == 0, one.stderr
    first = json.loads(one.stdout)["batches"]
    assert [b["batch"] for b in first] == [0]
    assert first[0]["retrained"] and first[0]["version"] == 1 and first[0]["champion_version"] == 1

    def served() -> str:
        return next(s for s in json.loads(run_mlops("status", "--json").stdout) if s["service"] == "api")["detail"]

    assert "serving v1" in served(), "the DAG's finish task reached the stack's API"

    # the chain of runs to the end; --restart, --source and --no-reload-api travel in its conf
    listings = tmp_path / "listings.csv"
    pd.DataFrame([{**row, "batch": i // 40} for i, row in enumerate(good_rows(80))]).to_csv(listings, index=False)
    chain = run_mlops(
        "train", "--runner", "airflow", "--all", "--restart", "--source", f"csv:{listings}", "--no-reload-api", "--json"
    )
    assert chain.returncode == 0, chain.stderr
    report = json.loads(chain.stdout)
    assert [b["batch"] for b in report["batches"]] == [0, 1] and report["end"] == "exhausted"
    assert set(report["batches"][0]) == set(first[0]), "the same report as the local runner"
    local_view = json.loads(run_mlops("models", "list", "--json").stdout)
    assert [v["version"] for v in local_view] == [b["version"] for b in first + report["batches"] if b["version"]]
    import sqlite3

    with sqlite3.connect(home / "data.db") as db:
        assert db.execute("SELECT count(*) FROM raw_data").fetchone() == (80,), "a fresh dataset from the file"
        assert (
            db.execute("SELECT value FROM mlops_meta WHERE key = 'source_identity'")
            .fetchone()[0]
            .endswith("listings.csv")
        )
    assert "serving v1" in served(), "nobody asked the API to reload"

    pids = our_pids(home)
    assert run_mlops("down").returncode == 0
    assert not any(alive(pid) for pid in pids)
    assert port_is_free("127.0.0.1", int(stack_env["MLOPS_API_PORT"]))


def test_airflow_runner_without_airflow_is_a_clear_error(home: Path) -> None:
    result = run_mlops(
        "train", "--runner", "airflow", "--all", env={"MLOPS_AIRFLOW_URL": f"http://127.0.0.1:{free_port()}"}
    )
    assert result.returncode == 1 and "is not reachable" in result.stderr and "--with airflow" in result.stderr
