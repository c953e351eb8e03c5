"""The wire profiles are exercised, not just declared (issue 15): the emulators speak another
profile, and the whole sync runs against them once the connections' extras say the same; with the
default extras it fails the way production would."""

from __future__ import annotations

import json
import os

from king_qics.state import InvoiceLedger
from sandbox.king.wire import ALTERNATIVE_EXTRAS as KING_ALTERNATIVE

INVOICES = "king_qics__noord__invoice_export"
MASTER_DATA = "king_qics__noord__master_data"


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

    set_extras(monkeypatch, "king_noord", KING_ALTERNATIVE)
    _, master = run_dag(MASTER_DATA)
    assert master["customers"] == "failed" and master["items"] == "success"  # debtor 10006, by design
    _, states = run_dag(INVOICES)
    assert states == {"select": "success", "export": "failed", "report": "failed"}  # N2026005, by design
    marked = {row.invoice_number for row in InvoiceLedger(state_store, "noord").rows(("marked",))}
    assert marked == {"N2026001", "N2026002", "N2026003"}
    king = sandbox.state("king")["administrations"][0]
    assert king["documents"] and sandbox.state("king")["profile"] == "alt"
