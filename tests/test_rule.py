"""The promotion rule: parsed once, the deciding clause kept, a malformed one refused at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_json, run_mlops


@pytest.mark.slow  # the `mlops` command or real processes: the full suite's, not the fast lane's
def test_the_promotion_rule_decides_and_the_deciding_clause_is_kept(home: Path) -> None:
    """The course's kind of rule, made strict (MAE must drop by half): every candidate after the
    first is rejected by that clause, the champion stays v1, and only the first move is recorded."""
    env = {"MLOPS_GENERATOR_BATCHES": "3", "MLOPS_GENERATOR_BATCH_ROWS": "400", "MLOPS_RETRAIN_MIN_NEW_SHARE": "0.01"}
    env["MLOPS_PROMOTE_RULE"] = "mae <= -50% and rmse <= +1%"
    assert run_mlops("train", "--all", "--no-reload-api", env=env).returncode == 0
    batches = run_json("batches", "list", env=env)
    rejected = [b for b in batches if b["retrained"] and b["batch"] > 0]
    assert rejected and all(b["outcome"] == "rejected" and b["champion_version"] == 1 for b in rejected)
    for b in rejected:
        promotion = b["promotion"]
        assert promotion["rule"] == "mae <= -50% and rmse <= +1%" and promotion["deciding"] == "mae <= -50%"
        mae = next(c for c in promotion["clauses"] if c["metric"] == "mae")
        assert not mae["holds"] and mae["change"] > -50
        assert mae["change"] == pytest.approx(promotion["deltas"]["mae"], abs=1e-3)
    assert run_json("models", "show", "champion", env=env)["version"] == 1
    manual = run_mlops("promote", str(rejected[0]["version"]), "--no-reload-api", env=env)
    assert manual.returncode != 0 and "mae <= -50%" in manual.stderr, "`mlops promote` applies the same rule"


@pytest.mark.slow  # the `mlops` command or real processes: the full suite's, not the fast lane's
@pytest.mark.parametrize("rule", ["mae <== 3%", "latency <= 1%", "mae <= -3% or rmse <= 1%", ""])
def test_a_malformed_rule_fails_at_start_in_one_line(home: Path, rule: str) -> None:
    result = run_mlops("train", "--all", env={"MLOPS_PROMOTE_RULE": rule})
    assert result.returncode != 0 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error:") and "promote_rule" in lines[0] and "Traceback" not in result.stderr
    assert not (home / "data.db").exists() or "batch_log" not in (home / "data.db").read_bytes().decode(errors="ignore")
