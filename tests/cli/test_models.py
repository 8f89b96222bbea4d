"""`mlops models list|show|compare`, `promote` and `rollback` as a new user meets them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_json, run_mlops

pytestmark = pytest.mark.slow  # runs `mlops` some thirty times on a trained registry (90 s)

ENV = {
    "MLOPS_GENERATOR_BATCHES": "4",
    "MLOPS_GENERATOR_BATCH_ROWS": "400",
    "MLOPS_GENERATOR_PRICE_DRIFT": "0.3",
    "MLOPS_RETRAIN_MIN_NEW_SHARE": "0.01",
    "COLUMNS": "80",
}


def test_versions_at_training_and_today_compare_and_a_careful_rollback(home: Path) -> None:
    assert run_mlops("train", "--all", "--no-reload-api", env=ENV).returncode == 0
    versions = run_json("models", "list", env=ENV)
    assert len(versions) >= 3
    champion = next(v for v in versions if "champion" in v["aliases"])
    # the loop remembered the scores it compared on today's test set: no model loading needed
    assert champion["rmse_today"] is not None
    assert all(v["description"] and "model trained by mlops on batches" in v["description"] for v in versions)
    listed = run_mlops("models", "list", env=ENV)
    assert all(len(line) <= 80 for line in listed.stdout.splitlines()), listed.stdout
    assert "RMSE@train" in listed.stdout and "today" in listed.stdout
    scored = run_json("models", "list", "--score", env=ENV)
    assert all(v["rmse_today"] > 0 for v in scored)
    assert {v["version"]: v["rmse_today"] for v in scored}[champion["version"]] == champion["rmse_today"]

    first = versions[0]["version"]
    compared = run_json("models", "compare", str(first), "champion", env=ENV)
    today = {v["version"]: v["today"] for v in compared["versions"]}
    assert today[champion["version"]]["rmse"] == champion["rmse_today"] and compared["test_rows"] > 0
    table = run_mlops("models", "compare", str(first), "champion", env=ENV)
    assert table.returncode == 0 and "MAE" in table.stdout and "R²" in table.stdout and "better" in table.stdout
    assert run_mlops("models", "compare", "1", "9999").returncode == 1

    missing = run_mlops("promote", "9999")
    assert missing.returncode == 1 and missing.stderr.startswith("error: model house_prices has no version 9999")

    # make the worst version champion by force; rolling back to the better one needs no question
    scores = {v["version"]: v["rmse_today"] for v in scored}
    worst = max(scores, key=scores.get)
    best = min(scores, key=scores.get)
    if champion["version"] != best:
        assert run_mlops("promote", str(best), "--force", "--no-reload-api").returncode == 0
    assert run_mlops("promote", str(worst), "--force", "--no-reload-api").returncode == 0
    back = run_mlops("rollback", "--no-reload-api", env=ENV)
    assert back.returncode == 0 and f"rolled back: champion v{worst} → v{best}" in back.stdout
    # now force the worst again and roll back twice: the second step goes to a worse version
    assert run_mlops("promote", str(worst), "--force", "--no-reload-api").returncode == 0
    assert run_mlops("rollback", "--no-reload-api").returncode == 0  # worst -> best
    assert run_json("models", "show", "champion")["version"] == best
    refused = run_mlops("promote", str(worst), "--no-reload-api", env=ENV)  # a refusal fits an 80-column terminal
    assert refused.returncode == 1 and max(map(len, refused.stderr.splitlines())) <= 80, refused.stderr
    said = " ".join(refused.stderr.split())
    assert "does not pass the promotion rule" in said and "rmse <= +0%" in said and refused.stderr.count("error:") == 1
    again = run_mlops("rollback", "--no-reload-api", env=ENV)  # best -> whatever came before: worse today
    assert again.returncode == 1 and max(map(len, again.stderr.splitlines())) <= 80, again.stderr
    said = " ".join(again.stderr.split())
    assert "scores worse than" in said and "--yes" in said
    assert run_json("models", "show", "champion")["version"] == best, "a refused rollback moves nothing"
    forced = run_mlops("rollback", "--no-reload-api", "--yes")
    assert forced.returncode == 0 and "rolled back: champion" in forced.stdout and "worse" in forced.stderr
    assert json.loads(run_mlops("models", "show", "champion", "--json").stdout)["version"] != best


def test_show_needs_no_data_db_and_says_today_when_it_can(registry_env: dict[str, str]) -> None:
    """`models show` reads the registry; today's RMSE comes from the data DB when it answers."""
    from mlops_cli.ops.netutil import free_port

    down = {**registry_env, "MLOPS_DATA_DB_URL": f"postgresql://mlops@127.0.0.1:{free_port()}/data"}
    shown = run_mlops("models", "show", "champion", "--json", env=down)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["rmse_today"] is None and json.loads(shown.stdout)["aliases"] == ["champion"]
