"""After the decision: train (or reuse what the same rows trained before), compare, finish."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_json


def test_a_restart_over_the_same_data_registers_no_copy_of_the_champion(home: Path) -> None:
    """`--restart` over identical data retrains where it did before; where the training rows are
    exactly the champion's, it says so and registers nothing."""
    from mlflow import MlflowClient

    from mlops_cli.config import load_settings
    from mlops_cli.pipeline.train import run

    settings = load_settings(generator_batches=3, generator_batch_rows=300)
    first = run(settings, reload_api=False)
    registered = {b.version for b in first.batches if b.version}
    again = run(settings, reload_api=False, restart=True)
    retrained = [b for b in again.batches if b.retrained]
    assert retrained, "the same data retrains where it did before"
    assert all(b.version in registered or b.outcome == "unchanged" for b in retrained)
    assert all(b.training["outcome"] in ("reused", "unchanged") for b in retrained), [b.training for b in retrained]
    uri = f"sqlite:///{home / 'mlflow.db'}"
    versions = MlflowClient(uri, registry_uri=uri).search_model_versions("name='house_prices'")
    assert {int(mv.version) for mv in versions} == registered, "no copy of a version was registered"


def test_the_champions_own_rows_again_register_nothing(home: Path) -> None:
    from mlops_cli.config import load_settings
    from mlops_cli.pipeline.train import run

    settings = load_settings(generator_batches=1, generator_batch_rows=300)
    assert run(settings, reload_api=False).batches[0].version == 1
    again = run(settings, reload_api=False, restart=True).batches[0]
    assert again.retrained and again.version is None and again.champion_version == 1
    assert again.outcome == "unchanged" and again.training["version"] == 1
    assert "same training rows as champion v1: nothing registered" in again.reason
    assert [m["version"] for m in run_json("models", "list")] == [1]
