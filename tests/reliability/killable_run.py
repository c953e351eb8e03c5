"""One DAG run (``dag.test()``) in a process of its own, for the fault campaign to SIGKILL.

``python tests/reliability/killable_run.py <dag_id> <retry_delay_s>``: parses
the DAGs, prints ``started`` and runs the DAG like tests/e2e/conftest.py's ``run_dag`` (same
environment: the caller's AIRFLOW_HOME, metadata DB and AIRFLOW_CONN_* connections). Not a test
module.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]


def main(dag_id: str, retry_delay: float) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags[dag_id]
    for task in dag.tasks:
        task.retry_delay = task.max_retry_delay = timedelta(seconds=retry_delay)
    conf = {name: param.value for name, param in dag.params.items()}
    conf.update(
        {name: False for name in ("full_refresh", "dry_run", "reconcile") if name in conf}
    )  # dag.test() keeps the last conf
    print("started", flush=True)
    dag.test(run_conf=conf)
    print("finished", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
