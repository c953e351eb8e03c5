"""The wire profiles are exercised, not just declared (issue 15): the emulators speak another
profile, and the whole sync runs against them once the connections' extras say the same; with the
default extras it fails the way production would."""

from __future__ import annotations

import json
import os

from king_qics.state import InvoiceLedger
from sandbox.king.wire import MATCHING_EXTRAS as KING_EXTRAS
from sandbox.qics.profile import MATCHING_EXTRAS as QICS_EXTRAS

INVOICES = "king_qics__noord__invoice_export"
MASTER_DATA = "king_qics__noord__master_data"
PROJECTS_EMPLOYEES = "king_qics__noord__projects_employees"


def set_extras(monkeypatch, conn_id: str, extras: dict) -> None:
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    conn = json.loads(os.environ[name])
    conn["extra"] = {**conn["extra"], **extras}
    monkeypatch.setenv(name, json.dumps(conn))


def test_the_sync_runs_against_king_in_another_wire_profile_with_the_matching_extras(
    run_dag, sandbox, state_store, monkeypatch
):
    sandbox.admin("king", "POST", "profile", json={"name": "alt"})
    _, states = run_dag(INVOICES)  # the default profile against it: refused as production would be
    assert states["export"] == "failed"
    assert "CreateJournaalpost" not in sandbox.calls("king")  # refused at the look-up, nothing posted

    set_extras(monkeypatch, "king_noord", KING_EXTRAS["alt"])
    _, master = run_dag(MASTER_DATA)
    assert master["customers"] == "failed" and master["items"] == "success"  # debtor 10006, by design
    _, states = run_dag(INVOICES)
    assert states == {"select": "success", "export": "failed", "report": "failed"}  # N2026005, by design
    marked = {row.invoice_number for row in InvoiceLedger(state_store, "noord").rows(("marked",))}
    assert marked == {"N2026001", "N2026002", "N2026003"}
    king = sandbox.state("king")["administrations"][0]
    assert king["documents"] and sandbox.state("king")["profile"] == "alt"


def test_the_whole_sync_runs_against_both_emulators_in_their_other_profile(
    run_dag, sandbox, state_store, monkeypatch
):
    """Both APIs in ``alt`` at once, every DAG: what the default profiles give (the demo's outcome)."""
    sandbox.admin("king", "POST", "profile", json={"name": "alt"})
    sandbox.admin("qics", "POST", "profile", json={"name": "alt"})
    _, master = run_dag(MASTER_DATA)  # the default extras: refused at the first Qics token request
    # the gate reads only King (and the default King profile reads the alt emulator's tables)
    assert master.pop("check_king") == "success"
    assert set(master.values()) <= {"failed", "upstream_failed"}, master
    writes = [op for op in sandbox.calls("qics") if op.split()[0] in ("POST", "PUT", "PATCH")]
    assert set(writes) <= {"POST token"}, writes  # nothing written

    set_extras(monkeypatch, "king_noord", KING_EXTRAS["alt"])
    set_extras(monkeypatch, "qics_sandbox", QICS_EXTRAS["alt"])
    _, master = run_dag(MASTER_DATA)
    assert {task: state for task, state in master.items() if state != "success"} == {"customers": "failed"}
    _, people = run_dag(PROJECTS_EMPLOYEES)
    assert set(people.values()) == {"success"}, people
    _, invoices = run_dag(INVOICES)
    assert invoices == {"select": "success", "export": "failed", "report": "failed"}  # N2026005
    ledger = {row.invoice_number: row.state for row in InvoiceLedger(state_store, "noord").rows()}
    assert {n for n, state in ledger.items() if state == "marked"} == {"N2026001", "N2026002", "N2026003"}
    boe = sandbox.state("king")["administrations"][0]["tables"]["BOE"]
    credit = [row for row in boe if row["FACT"] == "N2026003"]
    assert credit and all(row["OMSCHR"].startswith("Creditnota") for row in credit)
    qics = sandbox.state("qics")
    marks = [s for s in qics["entities"]["EntityState"] if not s["IsError"]]
    assert len(marks) == 3 and qics["profile"] == "alt"
    calls = sandbox.calls("qics")
    assert calls.get("GET SalesInvoiceLine") and "GET OverviewInvoiceLine" not in calls
