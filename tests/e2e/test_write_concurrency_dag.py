"""The master-data DAG run by real Airflow (dag.test) with qics_write_concurrency 8 against a Qics
sandbox that refuses more than 3 requests in flight (429 with Retry-After), 10 ms latency per call
on both sandboxes: every task succeeds, the concurrency came down to what Qics accepts, and Qics
holds every King debtor exactly once with its mapped fields, as the state store says."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from king_qics.state import SyncedRecords
from sandbox import universe
from sandbox.king.generate import generate_section

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "king_qics__noord__master_data"
DEBTORS = 300
CONCURRENCY = 8
QICS_LIMIT = 3


@pytest.fixture
def concurrent_dags(airflow_db, monkeypatch, tmp_path):
    """The DAGs parsed from the shipped config with noord's qics_write_concurrency set to 8."""
    from airflow.dag_processing.dagbag import DagBag

    config = yaml.safe_load((ROOT / "include" / "administrations.yaml").read_text(encoding="utf-8"))
    for entry in config["administrations"]:
        if entry["id"] == "noord":
            entry["qics_write_concurrency"] = CONCURRENCY
    path = tmp_path / "administrations.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv("KING_QICS_CONFIG", str(path))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag


@pytest.fixture
def generated(connections):
    adm = universe.ADMINISTRATIONS[0]
    company = {"CompanyId": "1", "Name": adm["name"], "Code": adm["qics_company_code"], "CurrencyId": "1"}
    connections.admin("king", "POST", "load", json=generate_section(DEBTORS, seed=13))
    connections.admin("qics", "POST", "load", json={"entities": {"Company": [company]}})
    for api in ("king", "qics"):
        connections.admin(api, "PUT", "latency", json={"seconds": 0.01})
    try:
        yield connections
    finally:
        for api in ("king", "qics"):
            connections.admin(api, "PUT", "latency", json={"seconds": 0})


def test_a_master_data_run_with_writes_in_flight_syncs_everything_once(
    concurrent_dags, generated, state_store
):
    sandbox = generated
    sandbox.faults("qics", {"kind": "rate_limit", "max_in_flight": QICS_LIMIT, "retry_after": 0.05})
    dag = concurrent_dags.dags[DAG_ID]
    config = dag.get_task("customers").op_kwargs["config_path"]
    assert yaml.safe_load(Path(config).read_text())["administrations"][0]["qics_write_concurrency"] == 8
    for task in dag.tasks:
        task.retry_delay = task.max_retry_delay = timedelta(seconds=1)
    conf = {name: param.value for name, param in dag.params.items()}
    conf.update({name: False for name in ("full_refresh", "dry_run", "reconcile") if name in conf})

    dag_run = dag.test(run_conf=conf)

    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert {task: state for task, state in states.items() if state not in ("success", "skipped")} == {}
    assert states["customers"] == "success"
    assert all(ti.try_number == 1 for ti in dag_run.get_task_instances() if ti.state == "success")
    faults = sandbox.admin("qics", "GET", "faults")
    assert faults["rules"][0]["fired"] > 0  # Qics refused some: the limit was reached
    assert 2 <= faults["peak_in_flight"] <= QICS_LIMIT  # in flight together, never past what it accepts

    king = generate_section(DEBTORS, seed=13)["administrations"][0]["tables"]["DEB"]
    records = [r for r in sandbox.state("qics")["entities"]["CustomerCompany"] if str(r["CompanyId"]) == "1"]
    assert Counter(str(r["CustomerCode"]) for r in records) == Counter(str(d["NR"]) for d in king)
    by_code = {str(r["CustomerCode"]): r for r in records}
    assert {str(d["NR"]): (d["NAAM"].strip(), d["PLAATS"]) for d in king} == {
        code: (r["Name"], r["VisitAddressCity"]) for code, r in by_code.items()
    }
    stored = SyncedRecords(state_store, "noord", "customers").qics_ids()
    assert stored == {code: int(r["CustomerCompanyId"]) for code, r in by_code.items()}
