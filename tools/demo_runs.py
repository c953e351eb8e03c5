"""The demo's first run of each DAG, through Airflow's REST API (as a user would trigger them).

The DAGs run from 07:00 to 20:00 Amsterdam time: a demo started outside that window would show an
empty UI until the next morning. Then the demo triggers each administration's DAGs once, in the
order of an initial load (master data, projects/employees, invoice export: later DAGs link to what
earlier ones synced), each after the previous one finished.
"""

from __future__ import annotations

import time
from datetime import datetime

import requests

from king_qics import catalog
from king_qics.catalog import AMSTERDAM

ORDER = ("master_data", "projects_employees", "invoice_export")


def outside_window(administrations, now: datetime) -> list:
    """The administrations whose daily schedule window does not contain ``now``."""
    clock = now.astimezone(AMSTERDAM).strftime("%H:%M")
    return [adm for adm in administrations if not adm.schedule.start <= clock <= adm.schedule.end]


class AirflowApi:
    """Airflow's public REST API as the demo's admin user (SimpleAuthManager login)."""

    def __init__(self, base: str, username: str, password: str):
        self.base, self.username, self.password = base, username, password
        self.session = requests.Session()

    def login(self) -> None:
        response = requests.post(
            f"{self.base}/auth/token", json={"username": self.username, "password": self.password}, timeout=30
        )
        response.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def get(self, path: str, **params) -> dict:
        response = self.session.get(f"{self.base}/api/v2/{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def trigger(self, dag_id: str) -> str:
        response = self.session.post(
            f"{self.base}/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None}, timeout=30
        )
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def wait_for_dags(self, dag_ids: list[str], timeout: float) -> None:
        """Until the DAG processor has parsed every DAG (a DAG can be triggered only then)."""
        deadline = time.monotonic() + timeout
        while True:
            known = {
                dag["dag_id"] for dag in self.get("dags", dag_id_pattern="king_qics", limit=1000)["dags"]
            }
            if set(dag_ids) <= known:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"DAGs not parsed after {timeout:.0f} s: {sorted(set(dag_ids) - known)}")
            time.sleep(2)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.get(f"dags/{dag_id}/dagRuns/{requests.utils.quote(run_id, safe='')}")["state"]
            if state in ("success", "failed"):
                return state
            if time.monotonic() > deadline:
                return f"still {state} after {timeout:.0f} s"
            time.sleep(2)


def first_runs(api: AirflowApi, administrations, say=print, run_timeout: float = 900) -> dict[str, str]:
    """Trigger every DAG of ``administrations`` once, kind by kind; returns DAG id -> final state."""
    api.login()
    dag_ids = {kind: [catalog.dag_id(adm.id, kind) for adm in administrations] for kind in ORDER}
    api.wait_for_dags([dag_id for ids in dag_ids.values() for dag_id in ids], timeout=300)
    states = {}
    for kind in ORDER:
        runs = {dag_id: api.trigger(dag_id) for dag_id in dag_ids[kind]}
        for dag_id, run_id in runs.items():
            say(f"  first run: {dag_id} {run_id} started")
        for dag_id, run_id in runs.items():
            states[dag_id] = api.wait_for_run(dag_id, run_id, run_timeout)
            say(f"  first run: {dag_id} {states[dag_id]}")
    return states
