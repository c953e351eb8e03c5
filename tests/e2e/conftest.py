"""Real Airflow for the end-to-end DAG tests: a migrated metadata DB (SQLite in the test Airflow
home), the pools the DAGs use, connections pointing at the running sandboxes, and a clean sync-state
store per test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from demo_home import demo_pools, sandbox_connections  # noqa: E402


@pytest.fixture(scope="session")
def airflow_db():
    """`airflow db migrate` once per session, plus the pools of the demo administrations."""
    env = dict(os.environ)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
    )
    from airflow.models.pool import Pool

    for name, pool in demo_pools().items():
        Pool.create_or_update_pool(name, pool["slots"], pool["description"], include_deferred=False)
    return os.environ["AIRFLOW_HOME"]


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag


@pytest.fixture
def connections(sandbox, monkeypatch):
    """The demo administrations' connections (as AIRFLOW_CONN_* variables) pointing at the sandboxes,
    with short timeouts and backoff so fault tests stay fast."""
    for conn_id, conn in sandbox_connections(sandbox.king_url, sandbox.qics_url).items():
        extra = {**json.loads(conn["extra"]), "timeout": 5, "backoff_initial": 0.05, "backoff_max": 0.5}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({**conn, "extra": extra}))
    return sandbox


@pytest.fixture
def state_store(airflow_db):
    """The default sync-state store (SQLite under the Airflow home), emptied for this test."""
    from king_qics.state import StateStore, metadata

    store = StateStore.from_settings()
    metadata.drop_all(store.engine)
    metadata.create_all(store.engine)
    from king_qics.hooks.qics.oauth import clear_process_cache

    clear_process_cache()
    return store


# What each param of the DAGs is when not given (dag.test() leaves the last run's values in them).
PARAM_DEFAULTS = {
    "full_refresh": False,
    "dry_run": False,
    "reconcile": False,
    "keys": {},
    "invoices": [],
    "administration": "",
    "accept_records": {},
    "accept_invoices": [],
    "note": "",
}


@pytest.fixture
def run_dag(dagbag, connections, state_store):
    """Run one DAG with dag.test() (tasks in this process, real HTTP to the sandboxes)."""

    def run(dag_id: str, **conf):
        dag = dagbag.dags[dag_id]
        for task in dag.tasks:  # retries stay on, but a test must not wait minutes for them
            task.retry_delay = timedelta(seconds=1)
            task.max_retry_delay = timedelta(seconds=2)
        # Every param explicitly: dag.test() keeps the previous run's conf in the DAG's params.
        defaults = {name: param.value for name, param in dag.params.items()}
        defaults.update({name: value for name, value in PARAM_DEFAULTS.items() if name in defaults})
        dag_run = dag.test(run_conf={**defaults, **conf})
        states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
        return dag_run, states

    return run
