"""`mlops train`: every answer of the source exactly once, through kills, repeats, gaps, restarts
and the end of the data, against real servers on loopback and the real `mlops` command."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_cli.ops.services import mlops_command
from mlops_cli.store.tables import CLEAN_COLUMNS, COLUMNS
from tests.conftest import QuietHandler, course_batches, run_json, run_mlops, serve_in_thread

ROUND_COLUMNS = (
    "id, batch, state, rows_received, rows_new, rows_kept, rows_dropped, dropped, rows_train, rows_test, new_rows, "
    "total_rows, new_share, drift_score, retrained, version, rmse, promoted, champion_version, decision, "
    "champion_on_batch, validation, promotion"
)


def loop_state(home: Path, env: dict[str, str]) -> dict[str, object]:
    """Everything a run leaves behind that must not depend on crashes: tables, decisions,
    versions, aliases, promotions, and the MLflow runs' final states."""
    from mlflow import MlflowClient

    from mlops_cli.config import load_settings
    from mlops_cli.registry.signing import unsigned_reason

    with sqlite3.connect(home / "data.db") as db:
        state = {
            "raw": db.execute("SELECT * FROM raw_data ORDER BY round, price, house_size, city").fetchall(),
            "clean": db.execute("SELECT * FROM clean_data ORDER BY round, price, house_size, city").fetchall(),
            "rounds": db.execute(f"SELECT {ROUND_COLUMNS} FROM batch_log ORDER BY id").fetchall(),
            "promotions": db.execute(
                "SELECT action, old_version, new_version, old_rmse, new_rmse, test_rows, round FROM promotions"
            ).fetchall(),
        }
    models = run_json("models", "list", env=env)
    state["versions"] = [(m["version"], m["batches"], m["round"], m["rmse"], m["aliases"]) for m in models]
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)  # explicit: another test may have set MLflow's global one
    experiment = client.get_experiment_by_name("house_prices")
    settings = load_settings(home=home)  # its signing key lives in that home
    registered = client.search_model_versions(f"name='{settings.model_name}'")
    state["signed"] = sorted((int(mv.version), unsigned_reason(settings, mv)) for mv in registered)
    statuses = [run.info.status for run in client.search_runs([experiment.experiment_id])]
    state["finished_runs"] = statuses.count("FINISHED")
    state["running_runs"] = statuses.count("RUNNING")
    return state


# The round columns the loop snapshot was recorded with (before decisions were typed records).
SNAPSHOT_COLUMNS = (
    "id, batch, state, rows_received, rows_new, rows_kept, rows_dropped, dropped, rows_train, rows_test, new_rows, "
    "total_rows, new_share, drift_score, retrained, reason, version, rmse, promoted, champion_version"
).split(", ")


def loop_summary(home: Path) -> dict[str, object]:
    """What a loop decided and kept, comparable across versions of the code: every round's numbers,
    digests of the raw and clean rows, the promotions and each version's metrics."""
    import hashlib

    from mlflow import MlflowClient

    def digest(rows: list[tuple]) -> str:
        return hashlib.sha256(repr(sorted(rows, key=repr)).encode()).hexdigest()

    with sqlite3.connect(home / "data.db") as db:
        kept = ", ".join(c for c in SNAPSHOT_COLUMNS if c != "reason")  # the text is rendered now, not stored
        rounds = db.execute(f"SELECT {kept} FROM batch_log ORDER BY id").fetchall()
        # the columns raw_data had when the snapshot was taken (extra came later)
        raw_columns = ", ".join(f'"{c}"' for c in [*COLUMNS, "batch", "round"])
        raw = db.execute(f"SELECT {raw_columns} FROM raw_data").fetchall()
        # the columns clean_data had when the snapshot was taken (row_hash came later)
        columns = ", ".join(f'"{c}"' for c in [*CLEAN_COLUMNS, "batch", "round", "split"])
        clean = db.execute(f"SELECT {columns} FROM clean_data").fetchall()
        promotions = db.execute(
            "SELECT action, old_version, new_version, old_rmse, new_rmse, test_rows FROM promotions ORDER BY id"
        ).fetchall()
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)  # explicit: another test may have set MLflow's global one
    versions = {
        int(mv.version): {k: float(mv.tags[k]) for k in ("rmse", "mae", "r2", "mape")}
        for mv in client.search_model_versions("name='house_prices'")
    }
    return {
        "rounds": [[json.loads(v) if isinstance(v, str) and v[:1] == "{" else v for v in row] for row in rounds],
        "raw": digest(raw),
        "clean": digest(clean),
        "promotions": [list(row) for row in promotions],
        "versions": {str(k): versions[k] for k in sorted(versions)},
    }


@pytest.mark.slow
def test_the_loop_keeps_the_same_rows_and_decisions_and_metrics_as_before(home: Path) -> None:
    """`tests/pipeline/data/loop_snapshot.json` was recorded by the loop before its data paths were
    made fast (columnar reads and writes, summaries, in-memory reuse): same rows, same decisions,
    same promotions, metrics equal to 1e-9."""
    from importlib.metadata import version

    snapshot = json.loads((Path(__file__).parent / "data" / "loop_snapshot.json").read_text())
    # OpenBLAS picks its kernels by CPU: AVX-512 machines sum in another order (RMSE moves by ~2e-5).
    # The snapshot was recorded with the Haswell (AVX2) kernels, which every x86-64 machine here runs.
    env = {"MLOPS_GENERATOR_BATCHES": "5", "MLOPS_GENERATOR_BATCH_ROWS": "3000", "OPENBLAS_CORETYPE": "Haswell"}
    # the triggers the snapshot's loop had: new rows and drift (unseen categories came later, like
    # the champion's degradation, which the tests' home turns off)
    env.update(MLOPS_RETRAIN_NEW_CATEGORY_SHARE="2")  # above 1: never (a share of 1 fires on a sample of new zips)
    assert run_mlops("train", "--all", "--no-reload-api", env=env).returncode == 0
    now = loop_summary(home)
    # 1e-9 holds for the numeric libraries the snapshot was recorded with (re-recorded 2026-11-28
    # with the code of 19f8299 when scikit-learn 1.9.1 / pandas 3.1.1 moved metrics by ~2e-5);
    # with others, rows and decisions must still be identical and metrics close.
    same_libraries = all(version(name) == v for name, v in snapshot["libraries"].items())
    rel = 1e-9 if same_libraries else 1e-3

    def numbers_apart(row: list) -> list:
        return row if same_libraries else [re.sub(r"[\d,.]+", "#", v) if isinstance(v, str) else v for v in row]

    assert now["raw"] == snapshot["raw"] and now["clean"] == snapshot["clean"]
    assert len(now["rounds"]) == len(snapshot["rounds"])
    for ours, theirs in zip(now["rounds"], snapshot["rounds"], strict=True):
        theirs = dict(zip(SNAPSHOT_COLUMNS, theirs, strict=True))
        ours = dict(zip([c for c in SNAPSHOT_COLUMNS if c != "reason"], ours, strict=True))
        # drift is now measured on every number and the state, a superset of the snapshot's three
        if theirs["drift_score"] is not None:
            assert ours.pop("drift_score") >= theirs["drift_score"] - 1e-4
        theirs = [v for k, v in theirs.items() if k not in ("reason", "drift_score")]
        ours = list(ours.values()) if len(ours) == len(theirs) else [v for k, v in ours.items() if k != "drift_score"]
        assert numbers_apart(ours) == pytest.approx(numbers_apart(theirs), rel=rel, abs=1e-12)
    assert len(now["promotions"]) == len(snapshot["promotions"])
    for ours, theirs in zip(now["promotions"], snapshot["promotions"], strict=True):
        assert ours == pytest.approx(theirs, rel=rel)
    assert now["versions"].keys() == snapshot["versions"].keys()
    for version_number, metrics in snapshot["versions"].items():
        assert now["versions"][version_number] == pytest.approx(metrics, rel=rel)


# The first champion's path on batch 0, the kept-champion path on batch 1, then every step boundary
# of batch 2, whose version is promoted (with these settings: see the reference run).
KILL_POINTS = ["registered@0", "compared@0", "alias_moved@0", "compared@1"] + [
    f"{point}@2"
    for point in (
        "fetched",
        "stored",
        "schema_checked",
        "quality_checked",
        "cleaned",
        "validated",
        "decided",
        "run_started",
        "registered",
        "trained",
        "compared",
        "alias_moved",
        "done",
    )
]


@pytest.mark.slow
def test_kill_at_every_step_boundary_then_rerun_equals_an_uninterrupted_run(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_GENERATOR_BATCHES", "3")
    monkeypatch.setenv("MLOPS_GENERATOR_BATCH_ROWS", "300")
    monkeypatch.setenv("MLOPS_RETRAIN_MIN_NEW_SHARE", "0.3")  # every batch retrains: every step runs
    reference_home = tmp_path / "reference" / ".mlops"
    reference_env = {"MLOPS_HOME": str(reference_home)}
    assert run_mlops("train", "--all", "--no-reload-api", env=reference_env).returncode == 0

    for point in KILL_POINTS:
        killed = run_mlops("train", "--all", "--no-reload-api", env={"MLOPS_FAULT_KILL_AT": point})
        assert killed.returncode == -9, f"{point}: {killed.stderr[-2000:]}"
    finished = run_mlops("train", "--all", "--no-reload-api", "--json")
    assert finished.returncode == 0, finished.stderr

    after_kills, uninterrupted = loop_state(home, {}), loop_state(reference_home, reference_env)
    assert after_kills == uninterrupted
    assert [reason for _, reason in after_kills["signed"]] == [None] * 3, "every version the API would load"
    assert uninterrupted["running_runs"] == 0 and uninterrupted["finished_runs"] == len(uninterrupted["versions"]) == 3
    assert [(p[0], p[2]) for p in after_kills["promotions"]] == [("first", 1), ("auto", 3)], "paths as intended"
    assert run_json("train", "--all")["batches"] == [], "nothing is left to resume or fetch"


@pytest.mark.slow
def test_the_course_server_is_consumed_exactly_once_to_a_clean_end(home: Path, course_server) -> None:
    """Repeats inside a release window (fresh samples), no day, a 500 then the Spanish end of data."""
    batches = course_batches(3, 300)
    api = course_server(batches, window=3, share=0.5, repeats=1)  # answered again even on a slow machine
    # only the first batch trains, so the others are processed well inside their window
    env = {
        "MLOPS_DATA_SOURCE": api.url,
        "MLOPS_DATA_POLL_INTERVAL": "0.3",
        "MLOPS_DATA_BACKOFF": "0",
        "MLOPS_RETRAIN_MIN_NEW_SHARE": "1",
        "MLOPS_DRIFT_TRIGGER": "false",
        # a later sample of a batch brings zips the first sample's model never saw: not a trigger here
        # (above 1: never; at 1 it fired when every new row of a later sample had a new zip)
        "MLOPS_RETRAIN_NEW_CATEGORY_SHARE": "2",
    }
    result = run_mlops("train", "--all", "--json", "--no-reload-api", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["end"] == "exhausted" and report["skipped_batches"] == []
    assert report["message"] == f"{api.url} has served every batch of group 1"  # COURSE_END, in our words
    assert [b["batch"] for b in report["batches"]] == [0, 1, 2], "one entry per batch number"
    assert all(b["answers"] >= 2 for b in report["batches"][1:]), "answered again inside its window"
    assert all("day=" not in query for query in api.queries)
    with sqlite3.connect(home / "data.db") as db:
        per_batch = dict(db.execute("SELECT batch, count(*) FROM raw_data GROUP BY batch").fetchall())
        states = {state for (state,) in db.execute("SELECT state FROM batch_log")}
    for number, rows in enumerate(batches):
        sample = round(len(rows) * 0.5)
        assert sample <= per_batch[number] <= len(rows), "never wiped, never more than the batch"
        assert number == 0 or per_batch[number] > sample, "the new rows of later samples were merged"
    assert states <= {"done", "duplicate"}
    trained = run_json("batches", "list")
    assert len(run_json("models", "list")) == 1, [(b["batch"], b["triggers"], b["cause"]) for b in trained]
    again = run_json("train", "--all", "--no-reload-api", env=env)
    assert again["batches"] == [] and again["end"] == "exhausted", "the end stays the end"


@pytest.mark.slow
def test_no_wait_stops_at_the_first_repeat_and_the_next_run_goes_on(
    home: Path, data_server: Callable[..., str]
) -> None:
    url = data_server("--release-window", "600")
    env = {"MLOPS_DATA_SOURCE": url}
    first = run_json("train", "--all", "--no-wait", "--no-reload-api", env=env)
    assert first["end"] == "repeating" and "repeats batch 0" in first["message"]
    assert [(b["batch"], b["answers"]) for b in first["batches"]] == [(0, 2)]
    second = run_json("train", "--all", "--no-wait", "--no-reload-api", env=env)
    assert second["end"] == "repeating" and [b["state"] for b in second["batches"]] == ["duplicate"]
    with sqlite3.connect(home / "data.db") as db:
        assert db.execute("SELECT count(DISTINCT batch) FROM raw_data").fetchone() == (1,)


@pytest.mark.slow
def test_waiting_for_a_release_stops_after_the_max_wait(home: Path, data_server: Callable[..., str]) -> None:
    url = data_server("--release-window", "600")
    env = {"MLOPS_DATA_SOURCE": url, "MLOPS_DATA_POLL_INTERVAL": "0.2", "MLOPS_DATA_MAX_WAIT": "1"}
    result = run_mlops("train", "--all", "--no-reload-api", env=env)
    assert result.returncode == 0, result.stderr
    assert "still served batch 0 after" in result.stdout and "MLOPS_DATA_MAX_WAIT" in result.stdout


class CourseAPI:
    """A scripted stand-in of the course's data API: answers /data from a list of
    (status, body) and records each request's query."""

    def __init__(self, script: list[tuple[int, dict]]) -> None:
        self.script = list(script)
        self.queries: list[str] = []
        api = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                api.queries.append(self.path)
                if self.path.startswith("/restart_data_generation"):
                    self.answer(200, {"ok": True})
                    return
                status, body = api.script.pop(0) if api.script else (400, {"detail": END})
                self.answer(status, body)

        self.server, self.url = serve_in_thread(Handler)


END = "Ya se recolectó toda la información mínima necesaria"


def answer(number: int, rows: int = 40, start: int = 0) -> tuple[int, dict]:
    from tests.conftest import good_rows

    data = [{**row, "zip_code": 78701.0} for row in good_rows(rows, start=start + 1000 * number)]
    return 200, {"group_number": 1, "batch_number": number, "data": data}


@pytest.fixture
def course_api() -> Callable[[list], CourseAPI]:
    servers: list[CourseAPI] = []

    def make(script: list[tuple[int, dict]]) -> CourseAPI:
        servers.append(CourseAPI(script))
        return servers[-1]

    yield make
    for api in servers:
        api.server.shutdown()


def env_for(api: CourseAPI, **extra: str) -> dict[str, str]:
    return {"MLOPS_DATA_SOURCE": api.url, "MLOPS_DATA_BACKOFF": "0", **extra}


@pytest.mark.slow
def test_a_gap_is_reported_and_a_500_then_the_spanish_end_of_data_ends_the_run(home: Path, course_api) -> None:
    api = course_api([answer(0), answer(3), (500, {"detail": "boom"}), (400, {"detail": END})])
    result = run_mlops("train", "--all", "--json", "--no-reload-api", env=env_for(api))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [b["batch"] for b in report["batches"]] == [0, 3] and report["skipped_batches"] == [1, 2]
    # said in our words: the server's Spanish sentence is recognised, not repeated
    assert report["end"] == "exhausted" and report["message"] == f"{api.url} has served every batch of group 1"
    assert "never served batch 1, 2" in result.stderr
    with sqlite3.connect(home / "data.db") as db:
        assert db.execute("SELECT batch FROM batch_log WHERE state = 'skipped'").fetchall() == [(1,), (2,)]
    assert all("day=" not in query for query in api.queries), "no day is sent unless MLOPS_DATA_DAY is set"
    assert all("group_number=1" in query for query in api.queries if query.startswith("/data"))


def test_an_unknown_group_is_an_error_not_the_end(home: Path, course_api) -> None:
    api = course_api([(400, {"detail": "Número de grupo inválido"})])
    result = run_mlops("train", "--all", env=env_for(api, MLOPS_DATA_GROUP="11"))
    assert result.returncode == 1
    assert "refused the request: Número de grupo inválido" in result.stderr and "MLOPS_DATA_GROUP" in result.stderr


@pytest.mark.slow
def test_batch_zero_again_after_later_batches_stops_and_wipes_nothing(home: Path, course_api) -> None:
    api = course_api([answer(0), answer(1), answer(0, start=500)])
    result = run_mlops("train", "--all", "--no-reload-api", env=env_for(api))
    assert result.returncode == 1
    assert "served batch 0 after batch 1: it restarted its data generation" in result.stderr
    assert "--restart" in result.stderr
    with sqlite3.connect(home / "data.db") as db:
        assert db.execute("SELECT batch, count(*) FROM raw_data GROUP BY batch").fetchall() == [(0, 40), (1, 40)]
        assert db.execute("SELECT batch, state FROM batch_log WHERE state = 'rejected'").fetchall() == [(0, "rejected")]
        assert db.execute("SELECT count(*) FROM answer_chunks").fetchone()[0] >= 1, "the rejected answer is kept"


@pytest.mark.slow
def test_a_malformed_answer_stops_the_run_and_the_next_run_goes_on(home: Path, course_api) -> None:
    status, bad = answer(1)
    bad["data"] = [{**row, "house_size": "big"} for row in bad["data"]]
    api = course_api([answer(0), (status, bad), answer(2), (400, {"detail": END})])
    first = run_mlops("train", "--all", "--no-reload-api", env=env_for(api))
    assert first.returncode == 1 and "batch 1" in first.stderr and "'house_size' is not numeric" in first.stderr
    second = run_json("train", "--all", "--no-reload-api", env=env_for(api))
    assert [b["batch"] for b in second["batches"]] == [2] and second["end"] == "exhausted"
    with sqlite3.connect(home / "data.db") as db:
        states = db.execute("SELECT batch, state FROM batch_log ORDER BY id").fetchall()
    assert states == [(0, "done"), (1, "rejected"), (2, "done")]


@pytest.mark.slow
def test_asking_the_data_api_for_one_batch_processes_what_it_serves(home: Path, course_api) -> None:
    api = course_api([answer(0), answer(1)])
    first = run_json("train", "--batch", "0", "--no-reload-api", env=env_for(api))
    assert [b["batch"] for b in first["batches"]] == [0]
    other = run_mlops("train", "--batch", "5", "--no-reload-api", env=env_for(api))
    assert other.returncode == 1 and "asked for batch 5, the data API served batch 1" in other.stderr
    with sqlite3.connect(home / "data.db") as db:
        assert db.execute("SELECT batch, state FROM batch_log ORDER BY id").fetchall() == [(0, "done"), (1, "done")]


# --- the dataset and its source --------------------------------------------------------------------


@pytest.mark.slow
def test_another_source_needs_restart_and_batch_past_the_end_is_an_error(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    from tests.conftest import good_rows

    monkeypatch.setenv("MLOPS_GENERATOR_BATCHES", "2")
    assert run_mlops("train", "--all", "--no-reload-api").returncode == 0
    past = run_mlops("train", "--batch", "999")
    assert past.returncode == 1 and "has no batch 999 (its batches: 0-1)" in past.stderr

    listings = tmp_path / "new.csv"
    pd.DataFrame([{**row, "batch": i // 30} for i, row in enumerate(good_rows(60))]).to_csv(listings, index=False)
    env = {"MLOPS_DATA_SOURCE": f"csv:{listings}"}
    refused = run_mlops("train", "--all", env=env)
    assert refused.returncode == 1
    assert "holds a dataset from generator seed=42" in refused.stderr and "--restart" in refused.stderr
    restarted = run_json("train", "--all", "--restart", "--no-reload-api", env=env)
    assert [b["batch"] for b in restarted["batches"]] == [0, 1]
    with sqlite3.connect(home / "data.db") as db:
        assert db.execute("SELECT count(*) FROM raw_data").fetchone() == (60,)
    # no source named: the loop goes on with the dataset's own (the CSV), not the built-in default
    followed = run_mlops("train", "--all", "--no-reload-api")
    assert followed.returncode == 0, followed.stderr
    assert f"source: csv:{listings} (the dataset's own" in " ".join(followed.stdout.split())
    assert "no new batches" in followed.stdout
    named = run_mlops("train", "--all", "--source", "generator")  # a source named on purpose is not overridden
    assert named.returncode == 1 and "holds a dataset from file" in named.stderr


@pytest.mark.slow
def test_csv_batch_gaps_are_kept_and_reported(home: Path, tmp_path: Path) -> None:
    import pandas as pd

    from tests.conftest import good_rows

    listings = tmp_path / "gaps.csv"
    numbers = [0] * 30 + [1] * 30 + [4] * 30
    pd.DataFrame([{**row, "batch": b} for row, b in zip(good_rows(90), numbers, strict=True)]).to_csv(
        listings, index=False
    )
    result = run_mlops("train", "--all", "--json", "--no-reload-api", env={"MLOPS_DATA_SOURCE": f"csv:{listings}"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [b["batch"] for b in report["batches"]] == [0, 1, 4] and report["skipped_batches"] == [2, 3]


def test_an_old_data_db_is_refused_with_a_hint(home: Path) -> None:
    home.mkdir(parents=True)
    with sqlite3.connect(home / "data.db") as db:
        db.execute("CREATE TABLE batch_log (batch INTEGER PRIMARY KEY, rows_received INTEGER)")
    result = run_mlops("train", "--all")
    assert result.returncode == 1 and "written by an older mlops" in result.stderr


@pytest.mark.slow
def test_two_trains_at_once_one_runs_the_other_is_refused(home: Path, course_api) -> None:
    """The first `mlops train` holds the lock while the data API is slow to answer."""
    import subprocess
    import threading

    asked, release = threading.Event(), threading.Event()
    api = course_api([answer(0), (400, {"detail": END})])
    original = api.server.RequestHandlerClass.do_GET

    def slow_get(handler) -> None:
        if handler.path.startswith("/data") and not release.is_set():
            asked.set()
            release.wait(120)
        original(handler)

    api.server.RequestHandlerClass.do_GET = slow_get
    env = {**os.environ, **env_for(api)}
    first = subprocess.Popen(
        [*mlops_command(), "train", "--all", "--json", "--no-reload-api"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert asked.wait(120), "the first run asks for data once it holds the lock"
    second = run_mlops("train", "--all", env=env_for(api))
    release.set()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 1 and "the data DB is being written by pid" in second.stderr
    assert "--wait-lock" in second.stderr
    assert [b["batch"] for b in json.loads(out)["batches"]] == [0]
    assert len(run_json("models", "list")) == 1
