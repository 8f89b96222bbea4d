"""`mlops batches list|show` and the batch table at tmux's default width."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_mlops

SMALL = {"MLOPS_GENERATOR_BATCHES": "3", "MLOPS_GENERATOR_BATCH_ROWS": "400", "COLUMNS": "80"}


def test_the_batch_log_in_80_columns_and_in_full(home: Path) -> None:
    trained = run_mlops("train", "--all", env=SMALL)
    assert trained.returncode == 0, trained.stderr
    assert all(len(line) <= 80 for line in trained.stdout.splitlines()), trained.stdout
    rows = [line for line in trained.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 3, "one line per batch: nothing wraps"
    assert "first model" in rows[0] or "new" in rows[0]

    listed = run_mlops("batches", "list", env=SMALL)
    assert listed.returncode == 0 and [r for r in listed.stdout.splitlines() if r.strip()[:1].isdigit()] == rows
    as_json = json.loads(run_mlops("batches", "list", "--json").stdout)
    assert [b["batch"] for b in as_json] == [0, 1, 2] and all("reason" in b for b in as_json)

    shown = run_mlops("batches", "show", "1", env=SMALL)
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert all(len(line) <= 80 for line in shown.stdout.splitlines()), shown.stdout
    for label in ("received", "dropped", "retrained", "triggers", "champion", "nulls", "volume", "drift", "unseen"):
        assert f"{label} " in text, label
    full = json.loads(run_mlops("batches", "show", "1", "--json").stdout)
    assert full["batch"] == 1 and full["rounds"][0]["batch"] == 1
    assert sum(full["dropped"].values()) == full["rows_dropped"]
    parts = {"schema", "quality", "volume", "drift", "new_categories", "sufficiency", "champion"}
    assert set(full["validation"]) == parts
    assert full["decision"]["retrain"] == full["retrained"] and full["decision"]["triggers"]
    assert full["champion_on_batch"]["version"] == 1 and full["champion_on_batch"]["rows"] == full["rows_kept"]

    missing = run_mlops("batches", "show", "7")
    assert missing.returncode == 1 and missing.stderr.startswith("error: no batch 7 in the batch log")
    assert run_mlops("batches", "show", "-1").returncode == 2


def test_no_batches_yet(home: Path) -> None:
    result = run_mlops("batches", "list")
    assert result.returncode == 0 and "no batches yet" in result.stdout
