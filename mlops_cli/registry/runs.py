"""Training runs in MLflow: log a fitted model with what it was judged on, register and sign its
version, and adopt what an earlier, crashed attempt registered. The pipeline decides what to log
(:class:`RunRecord`); only this module talks to MLflow's tracking API about it."""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_cli.faults import checkpoint
from mlops_cli.registry.client import offline_mlflow_env
from mlops_cli.registry.info import METRICS
from mlops_cli.registry.signing import sign_version

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd
    from mlflow import MlflowClient

    from mlops_cli.config import Settings


@dataclass(kw_only=True)
class Registered:
    """A registered version and the run that logged it."""

    version: int
    run_id: str
    metrics: dict[str, float]
    rows_train: int
    rows_test: int


@dataclass(kw_only=True)
class RunRecord:
    """What one training run logs.

    ``metrics`` are the test rows' (what versions are compared on; they also become the version's
    tags), ``extra_metrics`` everything else logged on the run (train_, validation_, interval_ …);
    ``candidates`` become child runs (name → validation metrics) with ``candidate_params`` each;
    ``write_artifacts`` fills a folder logged as ``audit/``.
    """

    run_name: str
    tags: dict[str, str]
    params: dict[str, Any]
    metrics: dict[str, float]
    extra_metrics: dict[str, float] = field(default_factory=dict)
    chosen: str = ""
    candidates: dict[str, dict[str, float]] = field(default_factory=dict)
    candidate_params: dict[str, Any] = field(default_factory=dict)
    example: pd.DataFrame | None = None
    pip_requirements: list[str] = field(default_factory=list)
    write_artifacts: Callable[[Path], None] | None = None


def version_of_run(client: MlflowClient, settings: Settings, run_id: str) -> int | None:
    found = client.search_model_versions(f"name='{settings.model_name}' and run_id='{run_id}'")
    return max((int(mv.version) for mv in found), default=None)


def adopt_earlier_attempt(
    client: MlflowClient, settings: Settings, experiment_id: str, tags: dict[str, str]
) -> Registered | None:
    """After a crash: the version an earlier attempt with these ``tags`` registered, if any.

    Its run is ended FINISHED and its tags completed. Runs of earlier attempts that registered
    nothing are ended FAILED, so no run stays RUNNING forever.
    """
    query = " and ".join(f"tags.{key} = '{tags[key]}'" for key in ("round", "dataset"))
    adopted: Registered | None = None
    for run in client.search_runs([experiment_id], filter_string=query):
        version = version_of_run(client, settings, run.info.run_id)
        if version is not None and adopted is None:
            metrics = {key: run.data.metrics[key] for key in METRICS if key in run.data.metrics}
            ours = {key: value for key, value in run.data.tags.items() if not key.startswith("mlflow.")}
            tag_version(client, settings, version, ours, metrics)
            if run.info.status == "RUNNING":
                client.set_terminated(run.info.run_id, status="FINISHED")
            adopted = Registered(
                version=version,
                run_id=run.info.run_id,
                metrics=metrics,
                rows_train=int(run.data.metrics.get("rows_train", 0)),
                rows_test=int(run.data.metrics.get("rows_test", 0)),
            )
        elif run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status="FAILED")
    return adopted


def tag_version(
    client: MlflowClient, settings: Settings, version: int, tags: dict[str, str], metrics: dict[str, float]
) -> None:
    for key, value in {**tags, **{k: repr(v) for k, v in metrics.items()}}.items():
        client.set_model_version_tag(settings.model_name, str(version), key, value)
    # what the MLflow UI shows on the version's page (empty otherwise, like "Created by")
    client.update_model_version(settings.model_name, str(version), description=describe(tags, metrics))


def describe(tags: dict[str, str], metrics: dict[str, float]) -> str:
    """A version in one sentence: model, data, score, who registered it."""
    import getpass

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    rmse = f"RMSE {metrics['rmse']:,.0f}" if "rmse" in metrics else "no score"
    rows = int(tags.get("rows_train", "0") or 0)
    return (
        f"{tags.get('model_type', 'unknown')} model trained by mlops on batches {tags.get('batches', '?')} "
        f"of dataset {tags.get('dataset', '?')} (round {tags.get('round', '?')}, {rows:,} training rows); "
        f"{rmse} on its {tags.get('rows_test', '?')} test rows; registered by {who}."
    )


def types_to_trust(model: Any) -> list[str]:
    """skops (MLflow's safe format) loads only the types it is told to trust: the ones this very
    model is made of (signed by us, see signing.py)."""
    import skops.io

    return sorted({"numpy.dtype", *skops.io.get_untrusted_types(data=skops.io.dumps(model))})


def log_and_register(
    client: MlflowClient,
    settings: Settings,
    experiment_id: str,
    model: Any,
    record: RunRecord,
    *,
    on_run_started: Callable[[str], None] | None = None,
    before_register: Callable[[], None] | None = None,
) -> Registered:
    """A new run tagged ``record.tags`` with the record's params, metrics, child runs and
    artifacts; ``model`` logged and registered as a version carrying the same tags and the test
    metrics, then signed (what the inference API will load).

    ``before_register`` runs last before the version exists (e.g. the writer lock's fence: a
    writer that lost it registers nothing).
    """
    offline_mlflow_env()
    import mlflow
    from mlflow.models import infer_signature

    run = client.create_run(experiment_id, run_name=record.run_name, tags=record.tags)
    if on_run_started:
        on_run_started(run.info.run_id)
    # MLflow prints "Successfully registered model ..." straight to stderr; our CLI reports it.
    with mlflow.start_run(run_id=run.info.run_id), contextlib.redirect_stderr(io.StringIO()):
        for candidate, scores in record.candidates.items():
            with mlflow.start_run(run_name=f"candidate-{candidate}", nested=True):
                mlflow.log_params({"model_type": candidate, **record.candidate_params})
                mlflow.log_metrics({f"validation_{k}": v for k, v in scores.items()})
                mlflow.set_tag("chosen", str(candidate == record.chosen).lower())
        mlflow.log_params(record.params)
        mlflow.log_metrics({**record.metrics, **record.extra_metrics})
        if record.write_artifacts:
            with tempfile.TemporaryDirectory() as folder:
                record.write_artifacts(Path(folder))
                mlflow.log_artifacts(folder, artifact_path="audit")
        if before_register:
            before_register()
        example = record.example
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(example, model.predict(example)) if example is not None else None,
            input_example=example,
            registered_model_name=settings.model_name,
            # pinning what we know avoids MLflow's slow requirement inference on every log
            pip_requirements=record.pip_requirements or None,
            skops_trusted_types=types_to_trust(model),
        )
        batch = record.tags.get("batch", "")
        checkpoint("registered", int(batch) if batch.isdigit() else None)
    version = int(info.registered_model_version)
    tag_version(client, settings, version, record.tags, record.metrics)
    sign_version(client, settings, version, run.info.run_id)
    return Registered(
        version=version,
        run_id=run.info.run_id,
        metrics=record.metrics,
        rows_train=int(record.extra_metrics.get("rows_train", 0)),
        rows_test=int(record.extra_metrics.get("rows_test", 0)),
    )
