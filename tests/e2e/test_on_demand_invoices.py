"""On demand, invoices: the ``invoices`` param retries exactly the invoices named, now; a booked
invoice is exported again only after King no longer holds its booking (checked first, and said so),
never booked twice. Real Airflow (dag.test) against both sandboxes; demo administration "noord":
after its first run N2026001..3 are booked and marked, N2026004 waits for its PDF and N2026005
fails (its customer 19999 is no King debtor)."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter

import pytest

from king_qics.hooks.king import KingFinanceHook
from king_qics.state import InvoiceLedger
from tests.king_records import create_record

DAG_ID = "king_qics__noord__invoice_export"


def bookings(sandbox) -> Counter:
    """FACT -> how many bookings (GRPROWs) King holds of it."""
    rows = sandbox.state("king")["administrations"][0]["tables"]["BOE"]
    return Counter(fact for fact, _ in {(row["FACT"], row["GRPROW"]) for row in rows})


def king() -> KingFinanceHook:
    return KingFinanceHook("king_noord", timeout=5)


def messages(caplog) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


@pytest.fixture
def first_run(run_dag, sandbox, state_store):
    _, states = run_dag(DAG_ID)
    assert states["export"] == "failed"  # N2026005
    ledger = InvoiceLedger(state_store, "noord")
    assert ledger.get(1).state == "marked" and ledger.get(6).last_error
    return ledger


def test_a_failing_invoice_is_retried_now_and_nothing_else(first_run, run_dag, sandbox, caplog):
    ledger = first_run
    waiting_before = ledger.get(5)  # N2026004, waiting for its PDF
    debtor = {"NR": 19999, "ZKSL": "NIEUW19999", "NAAM": "Nieuwe Klant B.V.", "PLAATS": "Utrecht"}
    with king() as hook:
        create_record(hook, "DEB", {**debtor, "LAND": "NL", "BETCOND": 3, "KPL": 300, "BLOK": "N"})
    sandbox.reset_calls()
    caplog.set_level(logging.INFO, logger="king_qics")

    _, states = run_dag(DAG_ID, invoices=["N2026005"])

    assert states == {"select": "success", "export": "success", "report": "success"}
    assert ledger.get(6).state == "marked" and ledger.get(6).last_error is None
    assert sandbox.calls("king").get("CreateJournaalpost") == 1
    assert bookings(sandbox)["N2026005"] == 1
    after = ledger.get(5)  # not named: not worked on, not even looked at
    assert (after.state, after.updated_at, after.attempts) == (
        waiting_before.state,
        waiting_before.updated_at,
        waiting_before.attempts,
    )
    assert "on demand: only invoices N2026005, now" in messages(caplog)


def test_a_booked_invoice_is_exported_again_only_after_king_no_longer_holds_its_booking(
    first_run, run_dag, sandbox, caplog
):
    ledger = first_run
    booked = ledger.get(1)
    caplog.set_level(logging.INFO, logger="king_qics")
    sandbox.reset_calls()

    _, states = run_dag(DAG_ID, invoices=["N2026001"])  # King still holds its booking: refused

    assert states["export"] == "failed"
    assert "CreateJournaalpost" not in sandbox.calls("king")
    assert bookings(sandbox)["N2026001"] == 1
    again = ledger.get(1)
    assert (again.state, again.booking_key, again.last_error) == ("marked", booked.booking_key, None)
    assert f"booked in King as {booked.booking_key} (checked now) and marked in Qics" in messages(caplog)
    assert "remove that booking in King first" in messages(caplog)

    with king() as hook:  # a bookkeeper removes the booking in King
        hook.delete_journal_entry(booked.booking_key)
    assert bookings(sandbox)["N2026001"] == 0
    sandbox.reset_calls()
    caplog.clear()

    _, states = run_dag(DAG_ID, invoices=["N2026001"])

    assert states["export"] == "success"
    assert sandbox.calls("king").get("CreateJournaalpost") == 1
    assert bookings(sandbox)["N2026001"] == 1
    rebooked = ledger.get(1)
    assert rebooked.state == "marked" and rebooked.booking_key != booked.booking_key
    assert f"King no longer holds booking {booked.booking_key}" in messages(caplog)
    marks = [
        s
        for s in sandbox.state("qics")["entities"]["EntityState"]
        if int(s["EntityId"]) == 1 and not s["IsError"]
    ]
    assert {m["DataSourceKey"] for m in marks} == {booked.booking_key, rebooked.booking_key}

    sandbox.reset_calls()
    _, states = run_dag(DAG_ID, invoices=["N2026001"])  # and again: King holds the new one
    assert states["export"] == "failed" and "CreateJournaalpost" not in sandbox.calls("king")
    assert bookings(sandbox)["N2026001"] == 1


def test_a_number_the_ledger_does_not_have_fails_the_run_with_that_reason(first_run, run_dag, sandbox):
    sandbox.reset_calls()
    dag_run, states = run_dag(DAG_ID, invoices=["N2099999"])
    assert states["export"] == "failed"
    counts = dag_run.get_task_instance("export").xcom_pull(task_ids="export", key="counts")
    assert counts["worked_on"] == 0 and "not in the export ledger" in counts["failures"]["N2099999"]
    assert "CreateJournaalpost" not in sandbox.calls("king")


def test_the_param_is_a_list_of_invoice_numbers(dagbag):
    param = dagbag.dags[DAG_ID].params.get_param("invoices")
    assert param.value == [] and param.schema["items"] == {"type": "string"}
    assert param.resolve(["N2026001"]) == ["N2026001"]


def test_a_dry_run_on_demand_builds_only_the_invoices_named(run_dag, sandbox, state_store):
    dag_run, states = run_dag(DAG_ID, invoices=["N2026002"], dry_run=True)
    assert states["export"] == "success"
    counts = dag_run.get_task_instance("export").xcom_pull(task_ids="export")
    assert counts["worked_on"] == 1 and counts["dry_run"]
    assert "CreateJournaalpost" not in sandbox.calls("king")
    assert InvoiceLedger(state_store, "noord").states() == {}


def test_on_demand_an_unknown_outcome_keeps_its_grace_then_is_posted_once(
    run_dag, sandbox, state_store, monkeypatch
):
    """A booking whose outcome is unknown (King answered 500: committed or not?) is looked up first
    on demand too, and posted again only after the King profile's outcome grace: never twice."""
    sandbox.faults("king", {"kind": "http_500", "probability": 1, "operations": ["CreateJournaalpost"]})
    run_dag(DAG_ID, invoices=["N2026001"])
    ledger = InvoiceLedger(state_store, "noord")
    assert ledger.get(1).state == "booking_sent" and bookings(sandbox)["N2026001"] == 0
    sandbox.clear_faults()
    sandbox.reset_calls()

    _, states = run_dag(DAG_ID, invoices=["N2026001"])  # at once: still inside the grace

    assert "CreateJournaalpost" not in sandbox.calls("king")
    assert ledger.get(1).state == "booking_sent" and "outcome unknown" in ledger.get(1).note
    assert bookings(sandbox)["N2026001"] == 0

    conn = json.loads(os.environ["AIRFLOW_CONN_KING_NOORD"])  # the grace is over
    conn["extra"] = {**conn["extra"], "outcome_grace_seconds": 0}
    monkeypatch.setenv("AIRFLOW_CONN_KING_NOORD", json.dumps(conn))
    _, states = run_dag(DAG_ID, invoices=["N2026001"])
    assert states["export"] == "success" and ledger.get(1).state == "marked"
    assert sandbox.calls("king").get("CreateJournaalpost") == 1 and bookings(sandbox)["N2026001"] == 1
