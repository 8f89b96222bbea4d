"""Run the training DAG with ``dag.test()`` until the data source is exhausted; print one JSON
line per run with its state and task states. A child process: Airflow reads its configuration
(AIRFLOW_HOME, metadata DB) once, at import."""

import json
import sys


def main(max_runs: int) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=sys.argv[2])
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("house_prices_training")
    for _ in range(max_runs):
        run = dag.test()
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        print("RUN " + json.dumps({"state": str(run.state), "tasks": states}), flush=True)
        if states.get("clean") != "success":  # the source is exhausted (or never released more)
            return


def inspect() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=sys.argv[2])
    dag = bag.dags.get("house_prices_training")
    print(
        "BAG "
        + json.dumps(
            {
                "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
                "dags": sorted(bag.dags),
                "max_active_runs": dag.max_active_runs if dag else None,
                "catchup": dag.catchup if dag else None,
                "tags": sorted(dag.tags) if dag else [],
                "tasks": sorted(t.task_id for t in dag.tasks) if dag else [],
                "schedule": str(dag.schedule) if dag else None,
            }
        )
    )


if __name__ == "__main__":
    inspect() if sys.argv[1] == "inspect" else main(int(sys.argv[1]))
