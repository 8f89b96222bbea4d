"""Every batch decision explained: the validation report, the champion on the new rows, typed
triggers, the promotion rule, all in `mlops batches show N --json` (issue 24)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_json, run_mlops

pytestmark = pytest.mark.slow  # the `mlops` command, many times: the full suite's, not the fast lane's

CITIES_BEFORE = ["Austin", "Dallas", "Houston"]
CITIES_AFTER = ["El Paso", "Lubbock"]  # never in batch 0: unseen by the first champion


def listings_csv(path: Path, rows: int = 300) -> Path:
    """Two batches of plausible listings with an extra column (``listing_url``) and without the
    optional ``status``, ``street`` and ``brokered_by``; batch 1 half in cities batch 0 lacks."""
    rng = np.random.default_rng(7)
    columns = ["batch", "price", "bed", "bath", "acre_lot", "city", "state", "zip_code", "house_size"]
    columns += ["prev_sold_date", "listing_url"]
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for batch in (0, 1):
            for i in range(rows):
                new_city = batch == 1 and i % 2 == 0
                city = CITIES_AFTER[(i // 2) % 2] if new_city else CITIES_BEFORE[i % 3]
                size = float(rng.integers(700, 4000))
                price = round(40_000 + 180 * size * (1.3 if city == "Austin" else 1.0) * rng.lognormal(0, 0.15))
                beds, baths = int(rng.integers(1, 6)), int(rng.integers(1, 4))
                zip_code = f"7{8000 + (i % 40):04d}"
                writer.writerow([batch, price, beds, baths, 0.2, city, "Texas", zip_code, size, "", f"https://x/{i}"])
    return path


@pytest.fixture
def two_batches(home: Path, tmp_path: Path) -> dict[str, str]:
    return {"MLOPS_DATA_SOURCE": f"csv:{listings_csv(tmp_path / 'listings.csv')}"}


def test_a_csv_with_an_extra_and_a_missing_optional_column_and_new_cities_is_reported(two_batches) -> None:
    trained = run_mlops("train", "--all", "--no-reload-api", env=two_batches)
    assert trained.returncode == 0, trained.stderr
    first = run_json("batches", "show", "0", env=two_batches)
    schema = first["validation"]["schema"]
    assert schema["extra"] == ["listing_url"] and schema["missing_required"] == []
    assert set(schema["missing_optional"]) == {"brokered_by", "status", "street"}
    assert schema["versus_first"] is None and any("kept in raw_data" in h for h in schema["handled"])
    assert first["champion_on_batch"] is None, "no champion priced the first batch"
    assert first["decision"]["fired"] == ["first_model"] and first["promotion"]["outcome"] == "first"
    assert first["mlflow"]["version"] == 1 and first["mlflow"]["run_id"]

    second = run_json("batches", "show", "1", env=two_batches)
    report = second["validation"]
    assert set(report) == {"schema", "quality", "volume", "drift", "new_categories", "sufficiency", "champion"}
    assert report["champion"] == 1, "what the report compared with"
    assert report["schema"]["versus_first"] == {"new": [], "missing": []}
    cities = report["new_categories"]["columns"]["city"]
    assert set(cities["values"]) == set(CITIES_AFTER) and cities["distinct"] == 2
    kept = second["rows_kept"]
    assert cities["rows"] == pytest.approx(kept / 2, abs=3) and cities["share"] == pytest.approx(0.5, abs=0.02)
    assert report["new_categories"]["columns"]["state"]["rows"] == 0
    fired = second["decision"]["fired"]
    assert "new_categories" in fired and second["retrained"], second["decision"]
    unseen = next(t for t in second["decision"]["triggers"] if t["name"] == "new_categories")
    assert unseen["value"] == report["new_categories"]["share"] and unseen["threshold"] == 0.2
    on_batch = second["champion_on_batch"]
    assert on_batch["version"] == 1 and on_batch["rows"] == kept and on_batch["mae"] > 0
    assert on_batch["mae_change"] == pytest.approx(on_batch["mae"] / on_batch["test_mae"] - 1, abs=1e-4)
    quality = report["quality"]
    assert quality["nulls"]["status"]["share"] == 1.0, "a missing optional column is stored as missing"
    assert report["volume"]["share_of_data"] == pytest.approx(kept / (kept + first["rows_kept"]), abs=1e-4)
    assert report["sufficiency"]["sufficient"] and report["sufficiency"]["minimum"] == 20
    promotion = second["promotion"]
    assert promotion["rule"] == "rmse <= +0%" and set(promotion["deltas"]) == {"mae", "rmse", "mape", "r2"}
    assert promotion["promoted"] == (promotion["deltas"]["rmse"] <= 0) and promotion["deciding"]


def test_a_degraded_champion_triggers_retraining_on_its_own(home: Path) -> None:
    """The generator's prices made to jump (60 % a batch): the new-row share and drift stay under
    their thresholds, and only the champion's error on the new rows says it is out of date."""
    env = {
        "MLOPS_GENERATOR_BATCHES": "2",
        "MLOPS_GENERATOR_BATCH_ROWS": "400",
        "MLOPS_GENERATOR_PRICE_DRIFT": "0.6",
        "MLOPS_GENERATOR_STATE_DRIFT": "0",
        "MLOPS_RETRAIN_MIN_NEW_SHARE": "0.9",
        "MLOPS_DRIFT_THRESHOLD": "5",
        "MLOPS_RETRAIN_MAX_DEGRADATION": "0.2",  # the default (the tests' home turns it off)
    }
    assert run_mlops("train", "--all", "--no-reload-api", env=env).returncode == 0
    shown = run_json("batches", "show", "1", env=env)
    on_batch = shown["champion_on_batch"]
    assert on_batch["mae_change"] > 0.2 and on_batch["mae"] > on_batch["test_mae"]
    assert shown["decision"]["fired"] == ["degradation"] and shown["retrained"] and shown["version"] == 2
    from mlflow import MlflowClient

    uri = f"sqlite:///{home / 'mlflow.db'}"
    tags = MlflowClient(uri, registry_uri=uri).get_model_version("house_prices", "1").tags
    assert (tags["batch_checked"], float(tags["batch_mae_change"])) == ("1", on_batch["mae_change"]), tags
    calm = {**env, "MLOPS_GENERATOR_PRICE_DRIFT": "0", "MLOPS_RETRAIN_MAX_DEGRADATION": "0.5"}
    assert run_mlops("train", "--all", "--restart", "--no-reload-api", env=calm).returncode == 0
    steady = run_json("batches", "show", "1", env=calm)
    assert not steady["retrained"] and steady["decision"]["cause"] == "no_trigger"
    assert abs(steady["champion_on_batch"]["mae_change"]) < 0.5, "the same market: the champion holds"
