"""One round of the house-price loop per run: fetch (and store raw) → validate_schema →
validate_quality → clean → validate (champion on the new rows, new categories, drift) → decide →
[train → compare → promote | reject] → log_result, then the next run, until the data source is
exhausted.

Both decisions are branches, so the graph shows them: ``decide`` takes ``train`` or
``no_retrain`` (by the retraining triggers), ``compare`` takes ``promote`` or ``reject`` (by
MLOPS_PROMOTE_RULE); ``log_result`` closes the round and hands its record to XCom.

Thin on purpose: every task imports mlops_cli inside its body and calls one function of the
batch engine (``mlops_cli/engine.py``), the same the local runner calls; XCom carries round ids.
A round's progress is durable in the data DB, so a retried or re-run task resumes it exactly
where it stopped. ``fetch`` stores each answer as it arrives; while the data API repeats a batch
number with nothing new (its next batch is not released yet), it waits as a sensor in reschedule
mode, freeing its worker slot between calls.
Hosts, URLs and secrets come from MLOPS_* environment variables read inside the tasks.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import PokeReturnValue, dag, task

DAG_ID = "house_prices_training"
RETRY_DELAY = timedelta(seconds=float(os.environ.get("MLOPS_AIRFLOW_RETRY_DELAY", "30")))
RETRIES = int(os.environ.get("MLOPS_AIRFLOW_RETRIES", "3"))
MAX_CHAINED_RUNS = int(os.environ.get("MLOPS_AIRFLOW_MAX_CHAIN", "1000"))
POLL_INTERVAL = float(os.environ.get("MLOPS_DATA_POLL_INTERVAL", "60"))
MAX_WAIT = float(os.environ.get("MLOPS_DATA_MAX_WAIT", "900"))
STEP = {"retries": RETRIES, "retry_delay": RETRY_DELAY, "retry_exponential_backoff": True}


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "house-prices", "training"],
    # batch: this batch only (no chain); restart: a fresh dataset first (first run of a chain);
    # source: MLOPS_DATA_SOURCE for this chain; reload_api: ask the inference API to reload
    params={"batch": None, "chain": 0, "restart": False, "source": None, "reload_api": True},
    doc_md=__doc__,
)
def house_prices_training() -> None:
    @task(**STEP)
    def prepare(params: dict | None = None) -> None:
        from mlops_cli.pipeline.tasks import task_prepare

        params = params or {}
        task_prepare(source=params.get("source") or None, restart=bool(params.get("restart")))

    @task.sensor(poke_interval=POLL_INTERVAL, timeout=MAX_WAIT, mode="reschedule", soft_fail=True, **STEP)
    def fetch(params: dict | None = None) -> PokeReturnValue:
        from mlops_cli.pipeline.tasks import task_fetch

        params = params or {}
        batch = params.get("batch")
        found = task_fetch(source=params.get("source") or None, batch=None if batch is None else int(batch))
        return PokeReturnValue(is_done=found is not None, xcom_value=found)

    @task.short_circuit
    def has_round(found: dict) -> bool:
        """False once the source is exhausted: nothing downstream runs, the chain ends."""
        return "round" in found

    def advance(found: dict, target: str, params: dict | None) -> dict:
        from mlops_cli.pipeline.tasks import task_advance

        params = params or {}
        reload_api = str(params.get("reload_api", True)).lower() not in ("false", "0", "")
        return task_advance(found["round"], target, source=params.get("source") or None, reload_api=reload_api)

    @task(**STEP)
    def validate_schema(found: dict, params: dict | None = None) -> dict:
        """The columns received against the contract and the dataset's first answer (storing the
        answer first if a crash came before)."""
        return advance(found, "schema_checked", params)

    @task(**STEP)
    def validate_quality(checked: dict, params: dict | None = None) -> dict:
        """Nulls, duplicates, values out of range, the target's consistency: counted per rule."""
        return advance(checked, "quality_checked", params)

    @task(**STEP)
    def clean(checked: dict, params: dict | None = None) -> dict:
        """The rows that passed the quality rules in clean_data, with their train/test split."""
        return advance(checked, "cleaned", params)

    @task(**STEP)
    def validate(cleaned: dict, params: dict | None = None) -> dict:
        """The validation report's rest: the champion's error on the new rows, unseen categories,
        drift per feature, volume, sufficiency."""
        return advance(cleaned, "validated", params)

    @task.branch(**STEP)
    def decide(cleaned: dict, params: dict | None = None) -> str:
        """Retrain or not: the branch not taken shows as skipped."""
        return "train" if advance(cleaned, "decided", params)["retrain"] else "no_retrain"

    @task(**STEP)
    def train(cleaned: dict, params: dict | None = None) -> dict:
        return advance(cleaned, "trained", params)

    @task.branch(**STEP)
    def compare(trained: dict, params: dict | None = None) -> str:
        """The new version against the champion, on the same test rows, by the promotion rule."""
        return "promote" if advance(trained, "compared", params)["promoted"] else "reject"

    @task(**STEP)
    def promote(trained: dict, params: dict | None = None) -> dict:
        """The new version becomes champion; the inference API is asked to reload."""
        return advance(trained, "done", params)

    @task(**STEP)
    def reject(trained: dict, params: dict | None = None) -> dict:
        """The champion stays; the new version stays registered as the challenger."""
        return advance(trained, "done", params)

    @task(trigger_rule="none_failed_min_one_success", **STEP)
    def log_result(cleaned: dict, params: dict | None = None) -> dict:
        """Close the round (after no_retrain) and hand its batch record to XCom and the log."""
        from mlops_cli.pipeline.tasks import task_result

        params = params or {}
        advance(cleaned, "done", params)
        return task_result(cleaned["round"], source=params.get("source") or None)

    @task
    def next_chain(params: dict | None = None) -> int:
        from airflow.sdk.exceptions import AirflowSkipException

        params = params or {}
        if params.get("batch") is not None:
            raise AirflowSkipException("a single batch was asked for: no next run")
        chain = int(params.get("chain") or 0) + 1
        if chain > MAX_CHAINED_RUNS:
            raise AirflowSkipException(f"safety cap reached: {MAX_CHAINED_RUNS} chained runs")
        return chain

    found = fetch()
    prepare() >> found
    schema = validate_schema(found)
    has_round(found) >> schema
    cleaned = clean(validate_quality(schema))
    trained = train(cleaned)
    no_retrain = EmptyOperator(task_id="no_retrain")
    decide(validate(cleaned)) >> [trained, no_retrain]
    promoted, rejected = promote(trained), reject(trained)
    compare(trained) >> [promoted, rejected]
    done = log_result(cleaned)
    [promoted, rejected, no_retrain] >> done
    trigger = TriggerDagRunOperator(
        task_id="trigger_next_batch",
        trigger_dag_id=DAG_ID,
        conf={
            "chain": "{{ ti.xcom_pull(task_ids='next_chain') }}",
            "source": "{{ params.source or '' }}",
            "reload_api": "{{ params.reload_api }}",
        },
        wait_for_completion=False,
    )
    done >> next_chain() >> trigger


house_prices_training()
