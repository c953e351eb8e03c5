"""The maintenance DAG (manual only) in real Airflow (dag.test) against both sandboxes: failing
records and invoices accepted as is with a note (kept and shown). A new Qics token chain is started
from the King <-> Qics page instead (tests/e2e/ui/test_qics_token.py): a DAG run's params are kept
in Airflow's metadata database.
"""

from __future__ import annotations

from king_qics.hooks.king import KingFinanceHook
from king_qics.state import INVOICES, Acceptances, InvoiceLedger, SyncedRecords
from tests.king_records import update_record

MAINTENANCE = "king_qics__maintenance"
MASTER_DATA = "king_qics__noord__master_data"
INVOICE_EXPORT = "king_qics__noord__invoice_export"
NOTE = "BETCOND 9 is added in King in January; accepted until then"


def test_a_failing_record_accepted_as_is_stays_off_the_list_until_it_fails_otherwise_or_syncs(
    run_dag, sandbox, state_store
):
    _, states = run_dag(MASTER_DATA)
    assert states["customers"] == "failed"  # 10006: BETCOND 9 does not exist in King
    records = SyncedRecords(state_store, "noord", "customers")
    reason = records.failing()["10006"]

    _, states = run_dag(
        MAINTENANCE, administration="noord", accept_records={"customers": ["10006"]}, note=NOTE
    )

    assert states == {
        "accept_records": "success",
        "accept_invoices": "skipped",
    }
    assert records.failing() == {}
    (kept,) = Acceptances(state_store, "noord").of("customers").values()
    assert (kept.key, kept.reason, kept.note, kept.attempts) == ("10006", reason, NOTE, 1)

    _, states = run_dag(MASTER_DATA, full_refresh=True)  # read again, fails again the same way
    assert states["customers"] == "success" and records.failing() == {}
    assert "10006" in Acceptances(state_store, "noord").of("customers")

    with KingFinanceHook("king_noord", timeout=5) as king:  # fixed in King: it syncs, acceptance ends
        update_record(king, "DEB", "NR", 10006, {"BETCOND": 3})
    _, states = run_dag(MASTER_DATA)
    assert states["customers"] == "success"
    assert "10006" in records.qics_ids() and Acceptances(state_store, "noord").of("customers") == {}


def test_accepting_needs_the_administration_a_note_and_a_record_that_is_failing(
    run_dag, sandbox, state_store
):
    run_dag(MASTER_DATA)
    _, states = run_dag(MAINTENANCE, accept_records={"customers": ["10006"]}, note=NOTE)
    assert states["accept_records"] == "failed"  # which administration's 10006?
    _, states = run_dag(MAINTENANCE, administration="noord", accept_records={"customers": ["10006"]}, note="")
    assert states["accept_records"] == "failed"
    _, states = run_dag(
        MAINTENANCE, administration="noord", accept_records={"customers": ["10001"]}, note=NOTE
    )
    assert states["accept_records"] == "failed"  # 10001 is synced, not failing
    assert set(SyncedRecords(state_store, "noord", "customers").failing()) == {"10006"}
    assert Acceptances(state_store, "noord").of("customers") == {}


def test_an_invoice_accepted_as_is_is_never_booked_and_a_booked_one_cannot_be(run_dag, sandbox, state_store):
    _, states = run_dag(INVOICE_EXPORT)
    assert states["export"] == "failed"  # N2026005: its customer is no King debtor
    ledger = InvoiceLedger(state_store, "noord")

    _, states = run_dag(
        MAINTENANCE, administration="noord", accept_invoices=["N2026005", "N2026001"], note="booked by hand"
    )

    assert states["accept_invoices"] == "failed"  # N2026001 is booked: refused
    assert ledger.get(6).state == "skipped" and ledger.get(6).note.startswith(
        "accepted as is: booked by hand"
    )
    assert ledger.get(1).state == "marked"
    kept = Acceptances(state_store, "noord").of(INVOICES)
    assert set(kept) == {"N2026005"} and "debtor 19999" in kept["N2026005"].reason
    sandbox.reset_calls()
    _, states = run_dag(INVOICE_EXPORT)
    assert states["export"] == "success" and "CreateJournaalpost" not in sandbox.calls("king")
