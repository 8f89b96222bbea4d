"""The closed loop end to end: `mlops data serve` on loopback, `mlops train --all` against it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import run_json, run_mlops

pytestmark = pytest.mark.slow


def check_loop(batches: list[dict], versions: list[dict], promotions: list[dict]) -> None:
    assert [b["batch"] for b in batches] == list(range(len(batches)))
    for b in batches:
        assert set(b) == {
            "batch",
            "state",
            "answers",
            "rows_received",
            "rows_kept",
            "retrained",
            "reason",
            "rmse",
            "version",
            "champion_version",
            "cause",
            "triggers",
            "outcome",
        }
        assert b["state"] == "done" and b["answers"] == 1
        assert 0 < b["rows_kept"] <= b["rows_received"]
        assert (b["version"] is not None) == b["retrained"] == (b["rmse"] is not None)
    retrained = [b for b in batches if b["retrained"]]
    assert retrained and len(retrained) < len(batches), "the threshold must skip some batches"
    # versions exist only for batches where retraining was decided
    assert sorted(v["version"] for v in versions) == [b["version"] for b in retrained]
    assert {v["version"]: v["batch"] for v in versions} == {b["version"]: b["batch"] for b in retrained}
    # exactly one champion, and it is the one the last batch reported
    champions = [v["version"] for v in versions if "champion" in v["aliases"]]
    assert champions == [batches[-1]["champion_version"]]
    # every promotion agrees with the RMSEs it recorded on the same test set
    assert promotions[0]["action"] == "first" and promotions[0]["new_version"] == retrained[0]["version"]
    for record in promotions[1:]:
        assert record["action"] == "auto" and record["new_rmse"] <= record["old_rmse"]
    promoted = {r["new_version"] for r in promotions}
    for b in batches:
        assert (b["cause"] == "triggered") == b["retrained"] and bool(b["triggers"]) == b["retrained"]
    for b in retrained:
        assert b["outcome"] in ("first", "promoted", "rejected")
        if b["outcome"] == "rejected":
            assert b["version"] not in promoted and b["champion_version"] != b["version"]
            assert "kept champion" in b["reason"]
        else:
            assert b["version"] in promoted and b["champion_version"] == b["version"]


def promotions_from(db_rows: list[tuple]) -> list[dict]:
    keys = ("action", "old_version", "new_version", "old_rmse", "new_rmse")
    return [dict(zip(keys, row, strict=True)) for row in db_rows]


def test_train_all_over_http_until_the_source_is_exhausted(data_api: str, home: Path) -> None:
    env = {"MLOPS_DATA_SOURCE": data_api}
    first = run_mlops("train", "--all", "--json", env=env)
    assert first.returncode == 0, first.stderr
    assert "not reachable" in first.stderr, "an absent inference API is a warning, not a failure"
    report = json.loads(first.stdout)
    assert report["end"] == "exhausted" and report["skipped_batches"] == []
    batches = report["batches"]
    assert len(batches) == 5
    versions = run_json("models", "list")
    with sqlite3.connect(home / "data.db") as db:
        rows = db.execute("SELECT action, old_version, new_version, old_rmse, new_rmse FROM promotions ORDER BY id")
        promotions = promotions_from(rows.fetchall())
    check_loop(batches, versions, promotions)

    again = run_mlops("train", "--all", env=env)
    assert again.returncode == 0, again.stderr
    assert f"no new batches: {data_api} has served every batch of group 1" in again.stdout
    assert "--restart" in again.stdout
    assert json.loads(run_mlops("train", "--all", "--json", env=env).stdout)["batches"] == []

    table = run_mlops("train", "--all", "--restart", env=env)
    assert table.returncode == 0, table.stderr
    assert f"no more batches: {data_api} has served every batch of group 1" in table.stdout
    assert "champion: v" in table.stdout
    with sqlite3.connect(home / "data.db") as db:
        assert db.execute("SELECT count(DISTINCT batch), count(*) FROM batch_log").fetchone() == (5, 5)


def test_local_generator_runs_the_same_loop(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import small_generator_env

    small_generator_env(monkeypatch, batches=3)
    one = run_json("train", "--batch", "1")["batches"]
    assert one[0]["batch"] == 1 and one[0]["retrained"] and one[0]["champion_version"] == 1
    again = run_json("train", "--batch", "1")
    assert again["batches"] == [] and again["message"] == "batch 1 was processed already"
    rest = run_json("train", "--all")["batches"]
    assert [b["batch"] for b in rest] == [0, 2], "the batches not done yet, whatever came first"
    shown = run_json("models", "show", "champion")
    assert "champion" in shown["aliases"] and shown["metrics"]["rmse"] == shown["rmse"]

    champion = shown["version"]
    other = next(v["version"] for v in run_json("models", "list") if v["version"] != champion)
    forced = run_json("promote", str(other), "--force", "--no-reload-api")
    assert forced["promoted"] and forced["champion_version"] == other and forced["previous_champion"] == champion
    assert forced["test_rows"] > 0 and forced["version_rmse"] > 0 and forced["champion_rmse"] > 0
    back = run_json("rollback", "--no-reload-api")
    assert back["champion_version"] == champion and back["previous_champion"] == other
    assert run_json("models", "show", "champion")["version"] == champion
    usage = run_mlops("promote")
    assert usage.returncode == 2 and "give a VERSION or --auto" in usage.stderr


@pytest.mark.external_db
def test_same_loop_with_postgres_data_and_mariadb_mlflow(
    data_api: str, home: Path, postgres_url: str, mariadb_url: str
) -> None:
    import sqlalchemy

    env = {
        "MLOPS_DATA_SOURCE": data_api,
        "MLOPS_DATA_DB_URL": postgres_url,
        "MLOPS_MLFLOW_TRACKING_URI": mariadb_url,
    }
    batches = run_json("train", "--all", env=env)["batches"]
    versions = run_json("models", "list", env=env)
    engine = sqlalchemy.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        rows = conn.execute(
            sqlalchemy.text("SELECT action, old_version, new_version, old_rmse, new_rmse FROM promotions ORDER BY id")
        ).fetchall()
        raw_batches = conn.execute(sqlalchemy.text("SELECT count(DISTINCT batch) FROM raw_data")).scalar()
    engine.dispose()
    check_loop(batches, versions, promotions_from([tuple(r) for r in rows]))
    assert raw_batches == 5
    assert not (home / "data.db").exists() and not (home / "mlflow.db").exists()
