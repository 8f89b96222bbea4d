"""The steps after a round's decision: ``decided`` → ``trained`` → ``compared`` → ``done``.

- :func:`train`: a version fitted on every clean training row so far and registered (adopted,
  not fitted again, when an earlier attempt registered it before a crash; nothing registered
  when a version was fitted from exactly these rows already).
- :func:`compare`: the new version, as challenger, against the champion on the same test rows,
  by the promotion rule; a promotion is recorded.
- :func:`finish`: a recorded promotion applied to the registry, the inference API asked to
  reload, the champion after the round noted (also for a round that did not retrain).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from mlops_cli.faults import checkpoint
from mlops_cli.pipeline.records import TrainingOutcome
from mlops_cli.store import listings, meta
from mlops_cli.store.rounds import get_round, update_round
from mlops_cli.store.tables import now

if TYPE_CHECKING:
    import pandas as pd

    from mlops_cli.config import Settings
    from mlops_cli.pipeline.context import Pipeline


def train(pipe: Pipeline, round_id: int) -> None:
    """``decided`` → ``trained``: a version fitted on every clean training row so far, registered.

    After a crash, a version an earlier attempt registered is adopted instead of training again,
    and runs left RUNNING by earlier attempts are ended.
    """
    from mlops_cli.pipeline.decide import DriftReference
    from mlops_cli.pipeline.fit import train_and_register
    from mlops_cli.pipeline.records import decision_text
    from mlops_cli.registry.runs import adopt_earlier_attempt
    from mlops_cli.registry.signing import sign_version

    r = get_round(pipe.engine, round_id)
    client, experiment_id = pipe.mlflow
    identity = {"round": str(round_id), "dataset": pipe.dataset_id}
    result = adopt_earlier_attempt(client, pipe.settings, experiment_id, identity)
    reference = None
    if result is not None:  # registered before a crash, maybe before it was signed
        sign_version(client, pipe.settings, result.version, result.run_id)
    else:
        # two reads: no moment holds every row twice
        train_rows = listings.training_rows(pipe.engine, round_id)
        test_rows = listings.test_rows(pipe.engine, round_id)
        pipe.test_sets[round_id] = test_rows  # the comparison's test set: the same rows
        fingerprint = training_fingerprint(pipe.settings, train_rows)
        if _reuse_same_training(pipe, r, fingerprint):
            return
        reference = DriftReference.of(train_rows).to_json()
        pipe.say(f"batch {r['batch']}: training on {len(train_rows)} rows")
        batches = ",".join(str(b) for b in sorted(set(train_rows["batch"].astype(int))))

        def started(run_id: str) -> None:
            with pipe.engine.begin() as conn:
                update_round(conn, round_id, run_id=run_id)
            checkpoint("run_started", r["batch"])

        result = train_and_register(
            client,
            pipe.settings,
            experiment_id,
            train=train_rows,
            test=test_rows,
            tags={**identity, "batch": str(r["batch"]), "batches": batches, FINGERPRINT_TAG: fingerprint},
            run_name=f"batch-{r['batch']}",
            on_run_started=started,
            before_register=lambda: _still_the_writer(pipe),
            audit={
                "validation": r["validation"],
                "triggers": (r["decision"] or {}).get("fired", []),
                "why": decision_text(r["decision"]),
            },
        )
    adopted = reference is None  # registered by an attempt that crashed afterwards
    training = {
        "outcome": TrainingOutcome.ADOPTED if adopted else TrainingOutcome.TRAINED,
        "version": result.version,
        "run_id": result.run_id,
        "metrics": result.metrics,
        "rows_train": result.rows_train,
        "rows_test": result.rows_test,
    }
    with pipe.engine.begin() as conn:
        if reference is not None:  # the drift reference of this version, should it become champion
            meta.set_drift_reference(conn, round_id, reference)
        update_round(
            conn,
            round_id,
            state="trained",
            version=result.version,
            rmse=result.metrics["rmse"],
            run_id=result.run_id,
            training=training,
        )
    checkpoint("trained", r["batch"])


def _still_the_writer(pipe: Pipeline) -> None:
    """LockLost unless this run still holds the writer lock (checked before writing to MLflow,
    which no data DB transaction covers)."""
    from mlops_cli.store.rounds import check_fence

    with pipe.engine.begin() as conn:
        check_fence(conn)


FINGERPRINT_TAG = "train_fingerprint"


def training_fingerprint(settings: Settings, train_rows: pd.DataFrame) -> str:
    """What a version was fitted from: the model setting and its training rows, whatever their
    order (a digest of their row hashes)."""
    import numpy as np

    digest = hashlib.sha256(f"{settings.model}|{settings.max_categories}|".encode())
    digest.update(np.sort(train_rows["row_hash"].to_numpy(dtype="int64")).tobytes())
    return digest.hexdigest()[:32]


def _reuse_same_training(pipe: Pipeline, r: dict[str, Any], fingerprint: str) -> bool:
    """When a registered version was fitted from exactly this (e.g. `--restart` over the same
    data), register no copy: the champion itself ends the round, another version is compared
    with the champion in place of a new one. False when there is none."""
    settings = pipe.settings
    fitted = [v for v in pipe.registry.versions() if v.tags.get(FINGERPRINT_TAG) == fingerprint]
    same = max(fitted, key=lambda v: int(v.version), default=None)
    if same is None:
        return False
    champion = pipe.registry.alias_version(settings.champion_alias)
    with pipe.engine.begin() as conn:
        training = {"version": int(same.version), "run_id": same.run_id, "fingerprint": fingerprint}
        if champion is not None and champion.version == same.version:
            update_round(
                conn,
                r["id"],
                state="compared",
                promoted=False,
                training={"outcome": TrainingOutcome.UNCHANGED, **training},
            )
        else:
            rmse = float(same.tags["rmse"]) if "rmse" in (same.tags or {}) else None
            reused = {"version": int(same.version), "rmse": rmse, "run_id": same.run_id}
            update_round(
                conn, r["id"], state="trained", training={"outcome": TrainingOutcome.REUSED, **training}, **reused
            )
    return True


def compare(pipe: Pipeline, round_id: int) -> None:
    """``trained`` → ``compared``: the new version, as challenger, against the champion on the same
    test set; a promotion is recorded (the alias moves in :func:`finish`)."""
    from mlops_cli.pipeline.promote import compare as compare_versions
    from mlops_cli.pipeline.promote import record
    from mlops_cli.pipeline.scores import current_test_set

    r = get_round(pipe.engine, round_id)
    version, settings = r["version"], pipe.settings
    pipe.say(f"batch {r['batch']}: comparing v{version} with the champion")
    champion = pipe.registry.alias_version(settings.champion_alias)
    if champion is not None and int(champion.version) != version:
        pipe.registry.set_alias(settings.challenger_alias, version)
    test = pipe.test_sets.pop(round_id, None)
    if test is None:  # not trained by this process (another task, or before a crash)
        test = current_test_set(pipe.engine, up_to_round=round_id)
    result = compare_versions(pipe.registry, settings, version, test, engine=pipe.engine)
    with pipe.engine.begin() as conn:
        if result.promoted:
            record(conn, settings, result, pipe.actor, round_id=round_id)
        update_round(conn, round_id, state="compared", promoted=result.promoted, promotion=result.record())
    checkpoint("compared", r["batch"])


def finish(pipe: Pipeline, round_id: int) -> None:
    """→ ``done``: a recorded promotion applied to the registry (again, if a crash came between),
    the inference API asked to reload, the champion after this round noted."""
    from mlops_cli.pipeline.api_client import request_reload
    from mlops_cli.pipeline.promote import move_champion
    from mlops_cli.pipeline.records import full_reason

    r = get_round(pipe.engine, round_id)
    settings = pipe.settings
    if r["promoted"]:
        why = full_reason(r["decision"], r["training"], r["promotion"])
        move_champion(pipe.registry, settings, r["version"], pipe.actor, why)
        checkpoint("alias_moved", r["batch"])
        if pipe.reload_api:
            warning = request_reload(settings)
            if warning:
                pipe.warnings.append(warning)
    champion = pipe.registry.alias_version(settings.champion_alias)
    with pipe.engine.begin() as conn:
        update_round(
            conn,
            round_id,
            state="done",
            champion_version=int(champion.version) if champion else None,
            finished_at=now(),
        )
    checkpoint("done", r["batch"])
