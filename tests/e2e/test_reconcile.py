"""Reconciliation in the master-data DAG, run by real Airflow (dag.test) against both sandboxes.

A record changed by hand in Qics and a King change that is not synced yet both show up, field by
field, with King key, Qics id, expected and actual value; a King record missing in Qics and one
that cannot be mapped too. Reconciling writes to neither system.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from king_qics.hooks.king import KingFinanceHook
from king_qics.hooks.qics import QicsMilestonesHook
from king_qics.state import reconciliation_differences, reconciliations
from tests.king_records import create_record, update_record

DAG_ID = "king_qics__noord__master_data"
KING_WRITES = ("Create", "Update", "Delete")


def writes(sandbox) -> dict:
    king = {op: n for op, n in sandbox.calls("king").items() if op.startswith(KING_WRITES) and n}
    qics = {op: n for op, n in sandbox.calls("qics").items() if op.split(" ")[0] in ("POST", "PUT") and n}
    return {**king, **qics}


def differences(store, entity: str) -> dict[tuple[str, str | None], sa.Row]:
    t = reconciliation_differences.c
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(reconciliation_differences).where((t.administration == "noord") & (t.entity == entity))
        ).all()
    return {(row.king_key, row.field): row for row in rows}


def customer(sandbox, code: str) -> dict:
    records = sandbox.state("qics")["entities"]["CustomerCompany"]
    return next(r for r in records if str(r["CustomerCode"]) == code and str(r["CompanyId"]) == "1")


def test_reconcile_reports_hand_edits_and_unsynced_king_changes_without_writing(
    run_dag, sandbox, state_store
):
    _, states = run_dag(DAG_ID)  # syncs; the first run of the day reconciles after the entity tasks
    assert states["reconcile"] == "success"
    after_sync = differences(state_store, "customers")
    # what the sync could not write is what differs: 10006's payment condition does not exist
    assert set(after_sync) == {("10006", None)}
    assert after_sync[("10006", None)].kind == "unmapped"
    assert "BETCOND 9" in after_sync[("10006", None)].expected
    assert differences(state_store, "vat_codes") == {}

    by_hand = customer(sandbox, "10007")
    qics = QicsMilestonesHook("qics_sandbox", token_store=state_store.tokens)
    qics.update("CustomerCompany", by_hand["CustomerCompanyId"], {**by_hand, "Name": "Handmatig gewijzigd"})
    qics.close()
    with KingFinanceHook("king_noord", timeout=5) as king:
        update_record(king, "DEB", "NR", 10002, {"PLAATS": "Amersfoort"})
        new = {"NR": 10099, "ZKSL": "NIEUW", "NAAM": "Nieuwe Klant B.V.", "BETCOND": 1, "KPL": 100}
        create_record(king, "DEB", new)
    sandbox.reset_calls()

    # on demand, with a dry run of the entity tasks: the report alone, nothing written anywhere
    _, states = run_dag(DAG_ID, reconcile=True, dry_run=True)
    assert states["reconcile"] == "success"
    assert writes(sandbox) == {}

    found = differences(state_store, "customers")
    hand_edit = found[("10007", "Name")]
    assert hand_edit.kind == "field" and hand_edit.qics_id == int(by_hand["CustomerCompanyId"])
    assert json.loads(hand_edit.expected) == "Ingenieursbureau Jansen N.V."
    assert json.loads(hand_edit.actual) == "Handmatig gewijzigd"
    moved = found[("10002", "VisitAddressCity")]
    assert (json.loads(moved.expected), json.loads(moved.actual)) == ("Amersfoort", "Groningen")
    assert found[("10099", None)].kind == "missing" and found[("10099", None)].qics_id is None
    assert set(found) == {("10007", "Name"), ("10002", "VisitAddressCity"), ("10099", None), ("10006", None)}
    with state_store.engine.connect() as conn:
        summary = conn.execute(
            sa.select(reconciliations).where(
                (reconciliations.c.administration == "noord") & (reconciliations.c.entity == "customers")
            )
        ).one()
    assert (summary.differing_records, summary.differences) == (4, 4)
    assert summary.king_records == 13 and summary.qics_records >= 11

    # nothing was repaired: Qics still holds the hand edit and the old city
    assert customer(sandbox, "10007")["Name"] == "Handmatig gewijzigd"
    assert customer(sandbox, "10002")["VisitAddressCity"] == "Groningen"
