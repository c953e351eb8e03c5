"""The projects/employees DAG run by real Airflow (dag.test) against both sandboxes over real HTTP,
after the master-data DAG (projects need customers; customers wait for their manager)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from king_qics.hooks.king import KingFinanceHook
from king_qics.state import SyncedRecords
from tests.king_records import delete_record, update_record

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "king_qics__noord__projects_employees"
MASTER_DATA = "king_qics__noord__master_data"
DEMO = json.loads((ROOT / "sandbox" / "fixtures" / "demo.json").read_text(encoding="utf-8"))
KING = DEMO["king"]["administrations"][0]["tables"]


def qics(sandbox, entity: str, code_field: str) -> dict[str, dict]:
    return {
        str(r[code_field]): r
        for r in sandbox.state("qics")["entities"].get(entity, [])
        if str(r.get("CompanyId")) == "1"
    }


def writes(sandbox) -> dict:
    return {op: n for op, n in sandbox.calls("qics").items() if op.split(" ")[0] in ("POST", "PUT") and n}


def iso(value) -> str | None:
    if not value:
        return None
    text = str(value)[:10]
    return text if text[4] == "-" else date(int(text[6:10]), int(text[3:5]), int(text[:2])).isoformat()


@pytest.fixture
def synced(run_dag, sandbox):
    _, master_states = run_dag(MASTER_DATA)
    dag_run, states = run_dag(DAG_ID)
    return master_states, states


def test_employees_and_projects_are_synced_with_their_fields(synced, sandbox, state_store):
    _, states = synced
    assert states == {
        "check_king": "success",
        "employees": "success",
        "projects": "success",
        "customer_managers": "success",
    }
    employees = qics(sandbox, "EmployeeCompany", "Abbreviation")
    assert set(employees) == {row["ZKSL"] for row in KING["MEDEWERKER"]}
    for row in KING["MEDEWERKER"]:
        employee = employees[row["ZKSL"]]
        assert employee["FirstName"] == (row.get("ROEPNM") or row.get("VOORLTRS"))
        assert (employee.get("MiddleName") or None) == (row.get("TSNVGSL") or None)
        assert employee["LastName"] == row["ACHTERNM"]
        assert employee["EmailAddress"] == row["EMAIL"]
        assert employee["EmployeeNumber"] == row["PERSNR"]  # an integer, from King's PERSNR
        assert employee["IsActive"] is (row.get("BLOK", "N") != "J" and not _left(row))

    projects = qics(sandbox, "Project", "ProjectCode")
    customers = qics(sandbox, "CustomerCompany", "CustomerCode")
    cost_centers = qics(sandbox, "CostCenter", "Code")
    assert set(projects) == {str(row["NR"]) for row in KING["KDR"]}
    for row in KING["KDR"]:
        project = projects[str(row["NR"])]
        assert project["Name"] == row["OMSCHR"]
        assert str(project["CustomerCompanyId"]) == str(customers[str(row["DEB"])]["CustomerCompanyId"])
        if row.get("KPL"):
            assert str(project["CostCenterId"]) == str(cost_centers[str(row["KPL"])]["CostCenterId"])
        if row.get("MEDEWDEC"):
            manager = employees[row["MEDEWDEC"]]
            assert str(project["ManagerEmployeeCompanyId"]) == str(manager["EmployeeCompanyId"])
        assert iso(project.get("StartDate")) == iso(row.get("DATAANVANG"))
        assert iso(project.get("EndDate")) == iso(row.get("DATGEREED"))
        assert project["IsActive"] is (row.get("BLOK", "N") != "J")
        assert project["CompanyId"] in (1, "1")

    # The customer that waited for its manager got the link as soon as the employees were in.
    manager = employees["SDEVRIES"]
    assert str(customers["10005"]["ManagerEmployeeCompanyId"]) == str(manager["EmployeeCompanyId"])
    assert SyncedRecords(state_store, "noord", "customers").pending() == {}


def _left(row) -> bool:
    left = iso(row.get("DATUITDIENST"))
    return bool(left) and left < date.today().isoformat()


def test_second_round_of_both_dags_writes_nothing(synced, run_dag, sandbox):
    sandbox.reset_calls()
    run_dag(MASTER_DATA)
    run_dag(DAG_ID)
    assert writes(sandbox) == {}


def test_one_changed_employee_field_gives_one_put(synced, run_dag, sandbox):
    with KingFinanceHook("king_noord") as king:
        update_record(king, "MEDEWERKER", "ZKSL", "PBAKKER", {"EMAIL": "petra.bakker@example.nl"})
    sandbox.reset_calls()
    run_dag(DAG_ID)
    assert writes(sandbox) == {"PUT EmployeeCompany": 1}
    assert (
        qics(sandbox, "EmployeeCompany", "Abbreviation")["PBAKKER"]["EmailAddress"]
        == "petra.bakker@example.nl"
    )


def test_project_deleted_in_king_stays_in_qics(synced, run_dag, sandbox):
    code = str(KING["KDR"][0]["NR"])
    with KingFinanceHook("king_noord") as king:
        delete_record(king, "KDR", "NR", code)
    sandbox.reset_calls()
    run_dag(DAG_ID, full_refresh=True)
    assert code in qics(sandbox, "Project", "ProjectCode")
    assert writes(sandbox) == {}


def test_project_with_unknown_debtor_fails_alone(run_dag, sandbox, state_store):
    fixture = json.loads(json.dumps(DEMO))
    fixture["_base_dir"] = str(ROOT / "sandbox" / "fixtures")
    kdr = fixture["king"]["administrations"][0]["tables"]["KDR"]
    kdr[0]["DEB"] = 10099  # not a debtor in King
    sandbox.load(fixture)
    run_dag(MASTER_DATA)
    _, states = run_dag(DAG_ID)
    assert states["projects"] == "failed" and states["employees"] == "success"
    projects = qics(sandbox, "Project", "ProjectCode")
    assert str(kdr[0]["NR"]) not in projects
    assert {str(row["NR"]) for row in kdr[1:]} <= set(projects)
    failing = SyncedRecords(state_store, "noord", "projects").failing()
    assert list(failing) == [str(kdr[0]["NR"])] and "DEB 10099" in failing[str(kdr[0]["NR"])]


def test_a_customer_gets_its_manager_on_the_next_master_data_run_after_the_employee_appears(
    run_dag, sandbox, state_store
):
    """The dependency is a lookup, not an ordering accident: sync employees outside the DAG (as if
    by another process), then only the master-data DAG runs."""
    from king_qics.config import load_administrations
    from king_qics.hooks.qics import QicsMilestonesHook
    from king_qics.sync.master_data import MasterDataSync

    run_dag(MASTER_DATA)
    assert SyncedRecords(state_store, "noord", "customers").pending().keys() == {"10005"}
    adm = load_administrations(ROOT / "include" / "administrations.yaml").get("noord")
    qics_hook = QicsMilestonesHook("qics_sandbox", token_store=state_store.tokens)
    with KingFinanceHook("king_noord") as king:
        MasterDataSync(adm, king, qics_hook, state_store).run("employees")
    sandbox.reset_calls()
    run_dag(MASTER_DATA)
    assert writes(sandbox) == {"PUT CustomerCompany": 1}
    manager = qics(sandbox, "EmployeeCompany", "Abbreviation")["SDEVRIES"]
    customer = qics(sandbox, "CustomerCompany", "CustomerCode")["10005"]
    assert str(customer["ManagerEmployeeCompanyId"]) == str(manager["EmployeeCompanyId"])
    assert SyncedRecords(state_store, "noord", "customers").pending() == {}
