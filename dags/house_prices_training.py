"""One batch of the house-price loop per run: ingest → clean → decide → train → promote →
reload the API, then trigger the next run, until the data source is exhausted.

Thin on purpose: every task imports mlops_cli inside its body and calls one step; XCom
carries batch ids and version numbers only. Hosts, URLs and secrets come from MLOPS_*
environment variables (or Airflow connections/variables) read inside the tasks.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task

DAG_ID = "house_prices_training"
RETRY_DELAY = timedelta(seconds=float(os.environ.get("MLOPS_AIRFLOW_RETRY_DELAY", "30")))
INGEST_RETRIES = int(os.environ.get("MLOPS_AIRFLOW_INGEST_RETRIES", "3"))
MAX_CHAINED_RUNS = int(os.environ.get("MLOPS_AIRFLOW_MAX_CHAIN", "1000"))


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "house-prices", "training"],
    # batch: process this batch (default: the next one); single: do not chain further runs
    params={"batch": None, "chain": 0, "single": False},
    doc_md=__doc__,
)
def house_prices_training() -> None:
    @task(retries=INGEST_RETRIES, retry_delay=RETRY_DELAY, retry_exponential_backoff=True)
    def ingest(params: dict | None = None) -> int:
        from airflow.sdk.exceptions import AirflowSkipException

        from mlops_cli.errors import SourceExhausted
        from mlops_cli.pipeline_tasks import ingest_step

        batch = (params or {}).get("batch")
        try:
            return ingest_step(None if batch is None else int(batch))["batch"]
        except SourceExhausted as done:
            raise AirflowSkipException(f"data source exhausted: {done.detail}") from None

    @task
    def clean(batch: int) -> int:
        from mlops_cli.pipeline_tasks import clean_step

        return clean_step(batch)["batch"]

    @task
    def decide(batch: int) -> dict:
        from mlops_cli.pipeline_tasks import decide_step, record_champion_step

        decision = decide_step(batch)
        if not decision["retrain"]:
            record_champion_step(batch)
        return {"batch": batch, "retrain": decision["retrain"]}

    @task
    def train(decision: dict) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from mlops_cli.pipeline_tasks import train_step

        if not decision["retrain"]:
            raise AirflowSkipException(f"batch {decision['batch']}: no retrain decided")
        trained = train_step(decision["batch"])
        return {"batch": trained["batch"], "version": trained["version"]}

    @task
    def promote(trained: dict) -> int:
        from mlops_cli.pipeline_tasks import promote_step

        return promote_step(trained["batch"], trained["version"])["champion"]

    @task
    def reload_api(champion: int) -> int:
        from mlops_cli.pipeline_tasks import reload_step

        warning = reload_step()
        if warning:
            print(f"warning: {warning}")
        return champion

    # Runs after a processed batch whether or not it retrained (train/promote/reload may be
    # skipped); never after exhaustion (everything skipped) or a failure.
    @task(trigger_rule="none_failed_min_one_success")
    def next_chain(params: dict | None = None) -> int:
        from airflow.sdk.exceptions import AirflowSkipException

        params = params or {}
        if params.get("single"):
            raise AirflowSkipException("a single batch was asked for: no next run")
        chain = int(params.get("chain") or 0) + 1
        if chain > MAX_CHAINED_RUNS:
            raise AirflowSkipException(f"safety cap reached: {MAX_CHAINED_RUNS} chained runs")
        return chain

    batch = ingest()
    decision = decide(clean(batch))
    reloaded = reload_api(promote(train(decision)))
    chain = next_chain()
    trigger = TriggerDagRunOperator(
        task_id="trigger_next_batch",
        trigger_dag_id=DAG_ID,
        conf={"chain": "{{ ti.xcom_pull(task_ids='next_chain') }}"},
        wait_for_completion=False,
    )
    [decision, reloaded] >> chain >> trigger


house_prices_training()
