"""On demand, master data: the ``keys`` param syncs exactly the records named, now, compared with
what Qics really holds (hashes and watermarks ignored for them), and reports per key what happened.
Real Airflow (dag.test) against both sandboxes over real HTTP; demo administration "noord"."""

from __future__ import annotations

import logging

import pytest

from king_qics.hooks.king import KingFinanceHook
from king_qics.hooks.qics import QicsMilestonesHook
from king_qics.state import SyncedRecords, Watermarks
from tests.king_records import update_record

DAG_ID = "king_qics__noord__master_data"
WRITES = ("POST", "PUT")


def writes(calls: dict) -> dict:
    return {op: n for op, n in calls.items() if op.split(" ")[0] in WRITES and n}


def customers_by_code(sandbox) -> dict[str, dict]:
    records = sandbox.state("qics")["entities"].get("CustomerCompany", [])
    return {str(r["CustomerCode"]): r for r in records if str(r.get("CompanyId")) == "1"}


def on_demand_table(caplog) -> str:
    texts = [r.getMessage() for r in caplog.records if "on demand (" in r.getMessage()]
    assert len(texts) == 1, texts
    return texts[0]


def test_keys_sync_exactly_the_named_records_now_and_report_each(run_dag, sandbox, state_store, caplog):
    run_dag(DAG_ID)  # the first sync: everything
    watermark = Watermarks(state_store, "noord").get("DEB")
    customer = customers_by_code(sandbox)["10007"]
    qics = QicsMilestonesHook("qics_sandbox", token_store=state_store.tokens)
    qics.update("CustomerCompany", customer["CustomerCompanyId"], {**customer, "Name": "Changed by hand"})
    qics.close()
    with KingFinanceHook("king_noord", timeout=5) as king:
        update_record(king, "DEB", "NR", 10002, {"PLAATS": "Amersfoort"})
        update_record(king, "DEB", "NR", 10003, {"PLAATS": "Tiel"})  # changed, but not named
    sandbox.reset_calls()
    caplog.set_level(logging.INFO, logger="king_qics")

    named = ["10007", "10002", "10001", "10006", "99999"]
    _, states = run_dag(DAG_ID, keys={"customers": named})

    # only the named customers: the other entities and the reconciliation are skipped
    assert states == {
        "check_king": "success",  # the gate lets an on-demand run through
        "vat_codes": "skipped",
        "payment_conditions": "skipped",
        "cost_centers": "skipped",
        "items": "skipped",
        "customers": "failed",  # 10006 cannot be synced and King has no 99999: the run says so
        "reconcile": "skipped",
    }
    assert writes(sandbox.calls("qics")) == {"PUT CustomerCompany": 2}
    qics_now = customers_by_code(sandbox)
    assert qics_now["10007"]["Name"] == "Ingenieursbureau Jansen N.V."  # no hash trusted: repaired
    assert qics_now["10002"]["VisitAddressCity"] == "Amersfoort"
    assert qics_now["10003"]["VisitAddressCity"] != "Tiel"  # not named: untouched
    king_reads = sandbox.calls("king")
    assert king_reads.get("GetStamtabelRecords", 0) >= len(named)
    assert Watermarks(state_store, "noord").get("DEB") == watermark  # no watermark moved

    table = on_demand_table(caplog)
    rows = {line.split()[0]: line for line in table.splitlines()[3:] if line[:1].isdigit()}
    assert "updated (Qics id" in rows["10007"] and "updated (Qics id" in rows["10002"]
    assert "unchanged (Qics holds it as mapped)" in rows["10001"]
    assert "failed: PaymentConditionId: King BETCOND 9 does not exist in King" in rows["10006"]
    assert "not found in King" in rows["99999"]
    assert set(SyncedRecords(state_store, "noord", "customers").failing()) == {"10006"}

    # the record left out is picked up by the next ordinary run, as always
    sandbox.reset_calls()
    run_dag(DAG_ID)
    assert writes(sandbox.calls("qics")) == {"PUT CustomerCompany": 1}
    assert customers_by_code(sandbox)["10003"]["VisitAddressCity"] == "Tiel"


def test_a_key_never_synced_is_matched_in_qics_by_code_and_the_run_is_green(
    run_dag, sandbox, state_store, caplog
):
    caplog.set_level(logging.INFO, logger="king_qics")
    dag_run, states = run_dag(DAG_ID, keys={"vat_codes": ["2"]})  # Qics has VAT code 2 already
    assert states["vat_codes"] == "success" and states["customers"] == "skipped"
    assert writes(sandbox.calls("qics")) == {"POST token": 1}  # matched as it is, not duplicated
    assert "unchanged (Qics holds it as mapped)" in on_demand_table(caplog)
    result = dag_run.get_task_instance("vat_codes").xcom_pull(task_ids="vat_codes")
    assert result["keys"] == {"2": "unchanged (Qics holds it as mapped)"} and result["read"] == 1
    assert set(SyncedRecords(state_store, "noord", "vat_codes").qics_ids()) == {"2"}


def test_an_unknown_entity_in_keys_is_refused_before_the_run(dagbag):
    from airflow.sdk.definitions.param import ParamValidationError

    param = dagbag.dags[DAG_ID].params.get_param("keys")
    param.resolve({"customers": ["10006"]})
    with pytest.raises(ParamValidationError):
        param.resolve({"employees": ["SDEVRIES"]})  # another DAG's entity


def test_keys_in_the_projects_employees_dag_skip_its_other_tasks(run_dag, sandbox, caplog):
    caplog.set_level(logging.INFO, logger="king_qics")
    _, states = run_dag("king_qics__noord__projects_employees", keys={"employees": ["SDEVRIES"]})
    assert states == {
        "check_king": "success",
        "employees": "success",
        "projects": "skipped",
        "customer_managers": "skipped",
    }
    assert "SDEVRIES       created (Qics id" in on_demand_table(caplog)
    assert writes(sandbox.calls("qics")) == {"POST token": 1, "POST EmployeeCompany": 1}
