"""Invoice export Qics -> King: the exactly-once protocol over real HTTP against both sandboxes
(lost answers, crashes between steps, concurrent runs). The booking builder: tests/unit/test_booking.py."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest

from king_qics.hooks.king import KingFinanceHook
from king_qics.state import InvoiceLedger, invoice_exports, utcnow
from tests.integration.invoice_env import (
    BOOKABLE,
    SimulatedCrash,
    assert_booked_once,
    bookings,
    crash_after,
    entity_states,
    exporter,
    run,
    set_king_extra,
)
from tests.king_records import create_record

# -- over HTTP against the sandboxes ---------------------------------------------------------------


def test_demo_run_books_skips_waits_and_fails_per_invoice(env):
    report = run(env)
    assert (report.booked, report.already_booked, report.marked) == (3, 0, 3)
    assert report.skipped == 1  # the written-off invoice
    assert report.waiting == {"N2026004": "waiting for the invoice PDF in Qics (missing_pdf: wait)"}
    assert report.failures == {"N2026005": "debtor 19999 (customer code) does not exist in King"}
    booked = bookings(env)
    assert set(booked) == BOOKABLE  # not: before the cutoff, Approved, written off, failing
    assert_booked_once(env, BOOKABLE)
    two = sorted(
        (int(r["TEGREK"]), int(r["BTW"]), Decimal(str(r["BEDRBOEK"])), Decimal(str(r["BEDRBTW"])))
        for r in booked["N2026002"]
    )
    assert two == [
        (8000, 1, Decimal("950.00"), Decimal("199.50")),
        (8010, 1, Decimal("440.00"), Decimal("92.40")),
        (8020, 2, Decimal("45.50"), Decimal("4.10")),
    ]
    credit = booked["N2026003"][0]
    assert Decimal(str(credit["BEDRBOEK"])) + Decimal(str(credit["BEDRBTW"])) == Decimal("-229.90")
    states = entity_states(env)
    ok = {s["EntityId"]: s for s in states if not s["IsError"]}
    assert set(map(int, ok)) == {1, 2, 3}
    assert all(
        s["DataSource"] == "king-qics-sync" and s["DataSourceKey"].startswith("70;2026;") for s in ok.values()
    )
    errors = [s for s in states if s["IsError"]]
    assert [(int(s["EntityId"]), s["Message"]) for s in errors] == [
        (6, "debtor 19999 (customer code) does not exist in King")
    ]
    ledger = InvoiceLedger(env.store, "noord").states()
    assert ledger == {1: "marked", 2: "marked", 3: "marked", 4: "skipped", 5: "selected", 6: "selected"}

    # a second run posts nothing and does not repeat the error record in Qics
    env.reset_calls()
    again = run(env)
    assert again.booked == again.marked == 0 and again.failed == 1 and again.pending == 1
    assert "CreateJournaalpost" not in env.calls("king")
    assert len([s for s in entity_states(env) if s["IsError"]]) == 1


def test_debtor_created_in_king_later_lets_the_invoice_through(env):
    run(env)
    with KingFinanceHook("king_noord") as king:
        create_record(king, "DEB", {"NR": 19999, "ZKSL": "NIEUW", "NAAM": "Nieuwe klant"})
    report = run(env)
    assert report.booked == 1 and report.failures == {}
    assert "N2026005" in bookings(env)
    assert InvoiceLedger(env.store, "noord").get(6).last_error is None


def test_missing_pdf_book_without(env):
    report = run(env, missing_pdf="book_without")
    assert "N2026004" in bookings(env) and report.booked == 4 and report.pending == 0
    row = InvoiceLedger(env.store, "noord").get(5)
    assert row.state == "marked" and row.with_pdf is False
    mark = next(s for s in entity_states(env) if int(s["EntityId"]) == 5)
    assert "zonder pdf" in mark["Message"]


def test_closed_period_is_refused_per_invoice(env):
    fixture = env.state("king")
    fixture.pop("_active_sessions", None)
    for adm in fixture["administrations"]:
        adm["adm_info"]["PERIODEINFO"]["PNAFGESLGEBR"] = 10
    env.admin("king", "POST", "load", json=fixture)
    report = run(env)
    assert report.failures["N2026001"].startswith("period 2026/10 is closed in King; book it by hand")
    assert "N2026003" in report.failures and "N2026001" not in bookings(env)


def test_king_refusal_is_a_per_invoice_failure_and_nothing_is_sent_state(env):
    fixture = env.state("king")
    fixture.pop("_active_sessions", None)
    fixture["administrations"][0]["tables"]["DAGBOEK"][0]["BLOK"] = True
    env.admin("king", "POST", "load", json=fixture)
    report = run(env)
    assert report.booked == 0
    assert report.failures["N2026001"].startswith("King refused the booking: Regel 1: dagboek 70")
    assert InvoiceLedger(env.store, "noord").get(1).state == "selected"  # King said no: not booked


def test_lost_answer_after_commit_is_resolved_by_lookup(env):
    env.faults("king", {"kind": "drop_after_commit", "operations": ["CreateJournaalpost"], "count": 2})
    report = run(env)
    assert report.booked == 3 and report.failed == 1  # only the unknown debtor
    assert env.calls("king")["CreateJournaalpost"] == 3  # nothing sent twice
    assert_booked_once(env, BOOKABLE)
    assert sum(bool(r.found_by_lookup) for r in InvoiceLedger(env.store, "noord").rows()) == 2


def test_server_error_on_post_waits_for_the_grace_then_looks_up_and_posts(env, monkeypatch):
    env.faults("king", {"kind": "http_500", "operations": ["CreateJournaalpost"], "count": 1})
    report = run(env)
    assert report.booked == 2 and "N2026001" in report.waiting  # outcome unknown, not re-sent yet
    assert InvoiceLedger(env.store, "noord").get(1).state == "booking_sent"
    set_king_extra(monkeypatch, outcome_grace_seconds=0)
    report = run(env)
    assert report.booked == 1
    assert_booked_once(env, BOOKABLE)


@pytest.mark.parametrize("state", ["booking_sent", "pdf_attached"])
def test_crash_between_steps_then_rerun_completes_without_posting_again(env, monkeypatch, state):
    set_king_extra(monkeypatch, outcome_grace_seconds=0)
    export = exporter(env)
    crash_after(export, monkeypatch, state)
    with pytest.raises(SimulatedCrash):
        export.run()
    sent_before = env.calls("king").get("CreateJournaalpost", 0)
    assert sent_before == (0 if state == "booking_sent" else 1)
    report = run(env)
    assert report.marked == 3
    assert env.calls("king")["CreateJournaalpost"] == 3  # one post per invoice in all
    assert_booked_once(env, BOOKABLE)
    assert len([s for s in entity_states(env) if not s["IsError"]]) == 3


def test_claim_of_a_dead_run_expires_a_live_one_is_respected(env, monkeypatch):
    set_king_extra(monkeypatch, outcome_grace_seconds=0)
    dead = exporter(env)
    crash_after(dead, monkeypatch, "booking_sent")  # killed (SIGKILL) right after writing booking_sent
    monkeypatch.setattr(dead.ledger, "release", lambda *args: None)  # a killed run releases nothing
    with pytest.raises(SimulatedCrash):
        dead.run()
    # within the lease the claim stands: another run leaves invoice 1 alone
    report = run(env)
    assert "N2026001" in report.waiting and "N2026001" not in bookings(env)
    assert report.booked == 2
    # the lease expired: the next run takes over, looks the booking up (absent), then posts it
    with env.store.transaction() as conn:
        conn.execute(
            invoice_exports.update()
            .where(invoice_exports.c.invoice_id == 1)
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )
    report = run(env)
    assert report.booked == 1 and report.marked == 1
    assert env.calls("king")["CreateJournaalpost"] == 3
    assert_booked_once(env, BOOKABLE)


def test_a_retry_of_the_same_run_takes_over_the_claims_of_its_killed_try(env, monkeypatch):
    """An Airflow retry (same DAG run) of an export whose worker was killed mid-invoice finishes the
    invoice at once instead of waiting for the lease of its own earlier try (make compose-test); the
    earlier try, were it still alive, is fenced out by the new epoch."""
    set_king_extra(monkeypatch, outcome_grace_seconds=0)
    dead = exporter(env, run_id="manual__1")
    crash_after(dead, monkeypatch, "booking_sent")
    monkeypatch.setattr(dead.ledger, "release", lambda *args: None)  # a killed try releases nothing
    with pytest.raises(SimulatedCrash):
        dead.run()
    held = InvoiceLedger(env.store, "noord").get(1)
    retry = exporter(env, run_id="manual__1")
    try:
        report = retry.run()
    finally:
        retry.king.close()
    assert "N2026001" not in report.waiting and report.marked == len(BOOKABLE)  # N2026001: the killed one
    assert_booked_once(env, BOOKABLE)
    assert InvoiceLedger(env.store, "noord").get(1).epoch > held.epoch
    from king_qics.state import Claim

    stale = Claim(1, held.owner, held.epoch, timedelta(minutes=5))
    assert not InvoiceLedger(env.store, "noord").renew(stale)  # the earlier try can change nothing


def test_concurrent_runs_never_post_one_invoice_twice(env):
    env.faults("king", {"kind": "latency", "latency_seconds": 0.3, "operations": ["CreateJournaalpost"]})
    exporter(env).select_from_qics()
    reports, errors = [], []

    def work():
        try:
            export = exporter(env)
            reports.append(export.export())
            export.king.close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert env.calls("king")["CreateJournaalpost"] == 3
    assert sum(r.booked for r in reports) == 3
    assert_booked_once(env, BOOKABLE)


def test_dry_run_posts_nothing_and_leaves_the_ledger(env):
    report = exporter(env).run(dry_run=True)
    assert {b["invoice"] for b in report.would_book} == BOOKABLE | {"N2026004"}
    assert "N2026005" in report.failures
    assert "CreateJournaalpost" not in env.calls("king")
    assert InvoiceLedger(env.store, "noord").states() == {}
    assert entity_states(env) == []
