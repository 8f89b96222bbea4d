"""A training run in MLflow: logged with its record, registered, signed; a crashed attempt adopted."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.linear_model import LinearRegression

from mlops_cli.config import load_settings
from mlops_cli.registry.client import tracking
from mlops_cli.registry.light import LightRegistry
from mlops_cli.registry.runs import RunRecord, adopt_earlier_attempt, describe, log_and_register, version_of_run
from mlops_cli.registry.signing import unsigned_reason

ROWS = pd.DataFrame({"house_size": [1000.0, 1500.0, 2000.0, 2500.0], "price": [1e5, 1.5e5, 2e5, 2.5e5]})


def _record(**tags: str) -> RunRecord:
    def artifacts(folder: Path) -> None:
        (folder / "model_card.md").write_text("# a model\n")

    return RunRecord(
        run_name="batch-3",
        tags={
            "round": "7",
            "dataset": "d1",
            "batch": "3",
            "batches": "0,1,2,3",
            "model_type": "linear",
            "rows_train": "4",
            "rows_test": "2",
            **tags,
        },  # fmt: skip
        params={"model_type": "linear"},
        metrics={"rmse": 12.5, "mae": 10.0, "r2": 0.9, "mape": 0.01},
        extra_metrics={"rows_train": 4, "rows_test": 2, "train_rmse": 1.0},
        chosen="linear",
        candidates={"linear": {"rmse": 13.0}, "ridge": {"rmse": 14.0}},
        example=ROWS[["house_size"]].head(2),
        write_artifacts=artifacts,
    )


def test_a_run_is_logged_registered_tagged_and_signed(home: Path) -> None:
    settings = load_settings()
    client, experiment = tracking(settings)
    started: list[str] = []
    model = LinearRegression().fit(ROWS[["house_size"]], ROWS["price"])
    registered = log_and_register(client, settings, experiment, model, _record(), on_run_started=started.append)
    assert started == [registered.run_id] and (registered.rows_train, registered.rows_test) == (4, 2)
    version = LightRegistry(settings).version(registered.version)
    assert version.tags["rmse"] == "12.5" and version.tags["batches"] == "0,1,2,3"
    assert (
        "trained by mlops on batches 0,1,2,3 of dataset d1 (round 7, 4 training rows); RMSE 12 on its 2 test rows"
        in version.description
    )
    assert unsigned_reason(settings, version) is None, "signed: the API will load it"
    run = client.get_run(registered.run_id)
    assert run.data.metrics["train_rmse"] == 1.0 and run.data.params == {"model_type": "linear"}
    children = client.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{registered.run_id}'")
    assert sorted(r.data.tags["chosen"] for r in children) == ["false", "true"]
    assert [a.path for a in client.list_artifacts(registered.run_id, "audit")] == ["audit/model_card.md"]


def test_a_crashed_attempts_version_is_adopted_and_its_runs_ended(home: Path) -> None:
    settings = load_settings()
    client, experiment = tracking(settings)
    model = LinearRegression().fit(ROWS[["house_size"]], ROWS["price"])
    identity = {"round": "7", "dataset": "d1"}
    assert adopt_earlier_attempt(client, settings, experiment, identity) is None, "nothing to adopt yet"
    empty = client.create_run(experiment, tags=identity)  # an attempt killed before it registered
    done = log_and_register(client, settings, experiment, model, _record())
    client.set_terminated(done.run_id, status="RUNNING")  # killed after registering
    adopted = adopt_earlier_attempt(client, settings, experiment, identity)
    assert (adopted.version, adopted.run_id, adopted.metrics["rmse"]) == (done.version, done.run_id, 12.5)
    assert client.get_run(done.run_id).info.status == "FINISHED"
    assert client.get_run(empty.info.run_id).info.status == "FAILED", "no run stays RUNNING forever"
    assert version_of_run(client, settings, empty.info.run_id) is None


def test_a_version_in_one_sentence() -> None:
    text = describe({"model_type": "ridge", "batches": "1-3", "dataset": "d", "round": "2", "rows_train": "1200"}, {})
    assert text.startswith("ridge model trained by mlops on batches 1-3 of dataset d (round 2, 1,200 training rows)")
    assert "no score on its ? test rows" in text
