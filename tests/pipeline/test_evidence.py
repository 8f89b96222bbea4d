"""What a training run carries to explain itself: code version, metrics, plots, importance, a model card."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_mlops


@pytest.mark.slow  # the `mlops` command or real processes: the full suite's, not the fast lane's
def test_the_registered_versions_run_explains_itself(home: Path) -> None:
    """Tags for the batches, the code and the triggers; train, validation and test metrics; the
    validation report, two plots, feature importance and a model card, listed through MLflow."""
    import json

    from mlflow import MlflowClient

    from mlops_cli.pipeline.evidence import ARTIFACTS

    env = {"MLOPS_GENERATOR_BATCHES": "1", "MLOPS_GENERATOR_BATCH_ROWS": "400"}
    assert run_mlops("train", "--all", "--no-reload-api", env=env).returncode == 0
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    run = client.get_run(client.get_model_version("house_prices", "1").run_id)
    tags = run.data.tags
    assert tags["batches"] == "0" and tags["triggers"] == "first_model" and tags["code_version"] != ""
    assert len(tags["git_commit"]) == 40 or tags["git_commit"] == "unknown"
    for part in ("train_", "validation_", ""):
        assert {f"{part}{m}" for m in ("mae", "rmse", "mape", "r2")} <= set(run.data.metrics), part
    assert run.data.metrics["train_rmse"] < run.data.metrics["validation_rmse"], "scored on rows it never saw"
    listed = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "audit")}
    assert listed == set(ARTIFACTS)
    folder = Path(client.download_artifacts(run.info.run_id, "audit", str(home / "audit")))
    for plot in ("predicted_vs_actual.png", "residuals.png"):
        assert (folder / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((folder / "validation_report.json").read_text())
    assert report["schema"]["missing_required"] == [] and report["quality"]["rows"] > 0
    importance = json.loads((folder / "feature_importance.json").read_text())
    assert set(importance["features"]) == {"city", "state", "zip_code", "bed", "bath", "acre_lot", "house_size"}
    assert max(f["mean"] for f in importance["features"].values()) > 0, "some feature matters"
    card = (folder / "model_card.md").read_text()
    assert "rmse <= +0%" in card and "no champion yet" in card and "| test |" in card
