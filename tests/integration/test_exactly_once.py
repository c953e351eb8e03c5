"""Exactly once, for real (issue 14): the look-up proves a match before it adopts a King booking, a
near match is a named failure, one run never posts an invoice twice, a worker that outlived its
claim cannot post, and every key we send is the key we look up. Over real HTTP against both
sandboxes; King's hand bookings and its own FACT numbering are staged through its admin API."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest

from king_qics.state import InvoiceLedger, invoice_exports, utcnow
from king_qics.sync import invoices as inv
from tests.demo_data import load_fixture
from tests.integration.invoice_env import (
    BOOKABLE,
    NOORD_KING,
    assert_booked_once,
    boe,
    booking_groups,
    bookings,
    entity_states,
    exporter,
    hand_booking,
    run,
    set_king_extra,
    total,
)


def grace(monkeypatch, seconds: float) -> None:
    """How long King may take to commit a request we gave up on (the King profile's setting)."""
    set_king_extra(monkeypatch, outcome_grace_seconds=seconds)


def marked(env) -> set[int]:
    return {int(s["EntityId"]) for s in entity_states(env) if not s["IsError"]}


def errors(env) -> dict[int, str]:
    return {int(s["EntityId"]): s["Message"] for s in entity_states(env) if s["IsError"]}


def reload(env, change) -> None:
    """The demo fixture with ``change(fixture)`` applied, loaded into both sandboxes."""
    fixture = load_fixture()
    change(fixture)
    env.load(fixture)


def qics_invoice(fixture: dict, number: str) -> dict:
    return next(i for i in fixture["qics"]["entities"]["Invoice"] if i["InvoiceNumber"] == number)


# -- adoption: only what matches what we would post ------------------------------------------------


def test_hand_booking_with_the_same_fact_but_another_debtor_is_a_named_failure(env):
    key = hand_booking(env, boe("N2026002", 10000, "2026-10-12", "10.00", "2.10"))
    report = run(env)
    reason = report.failures["N2026002"]
    assert f"King has FACT N2026002 on debtor 10000, 12.10 (booking {key})" in reason
    assert "this invoice is debtor 10001, 1,731.50" in reason
    assert len({r["GRPROW"] for r in bookings(env)["N2026002"]}) == 1  # only the hand booking
    assert 2 not in marked(env) and errors(env)[2] == reason
    row = InvoiceLedger(env.store, "noord").get(2)
    assert row.state == "selected" and row.booking_key is None
    assert report.booked == 2  # the others are booked as usual


def test_fact_differing_only_in_letter_case_is_not_adopted(env):
    # King compares FACT case-insensitively, so its look-up returns this booking for N2026002
    hand_booking(env, boe("n2026002", 10001, "2026-10-12", "1431.00", "300.50"))
    report = run(env)
    assert "King has FACT n2026002" in report.failures["N2026002"]
    assert "FACT differs" in report.failures["N2026002"]
    assert 2 not in marked(env)


def test_another_qics_companys_invoice_with_the_same_number_is_not_adopted(env):
    # booked by this program for company 2's invoice 42, which happens to carry the same number,
    # and even the same debtor, date and total
    stranger = export_marker(company_id=2, invoice_id=42)
    hand_booking(env, boe("N2026002", 10001, "2026-10-12", "1431.00", "300.50", OPM=stranger), program="CSW")
    report = run(env)
    assert "Qics invoice 42 of company 2" in report.failures["N2026002"]
    assert 2 not in marked(env)


def test_a_matching_hand_booking_is_adopted_and_nothing_is_posted_for_it(env):
    key = hand_booking(env, boe("N2026002", 10001, "2026-10-12", "1431.00", "300.50"))
    report = run(env)
    assert report.already_booked == 1 and report.booked == 2 and report.failures.keys() == {"N2026005"}
    row = InvoiceLedger(env.store, "noord").get(2)
    assert (row.state, row.booking_key, row.found_by_lookup) == ("marked", key, True)
    assert len({r["GRPROW"] for r in bookings(env)["N2026002"]}) == 1


def test_closed_period_invoice_booked_by_hand_in_the_next_period_is_adopted(env):
    def close_october(fixture):
        for adm in fixture["king"]["administrations"]:
            adm["adm_info"]["PERIODEINFO"]["PNAFGESLGEBR"] = 10

    reload(env, close_october)
    key = hand_booking(env, boe("N2026001", 10000, "2026-10-05", "760.00", "159.60", period=11))
    report = run(env)
    assert "N2026001" not in report.failures
    assert InvoiceLedger(env.store, "noord").get(1).booking_key == key and 1 in marked(env)
    assert report.failures["N2026002"].startswith("period 2026/10 is closed in King")  # not booked


def test_king_numbering_fact_itself_with_a_lost_answer_books_each_invoice_once(env, monkeypatch):
    env.admin("king", "POST", "journal_numbering", json={"environment_code": NOORD_KING, "journal": 70})
    env.faults("king", {"kind": "drop_after_commit", "operations": ["CreateJournaalpost"], "count": 3})
    grace(monkeypatch, 0)
    first = run(env)
    second = run(env)
    groups = booking_groups(env)
    assert len(groups) == 3, groups  # N2026001..003, once each, under King's numbers
    assert {rows[0]["FACT"] for rows in groups.values()} == {"26000101", "26000102", "26000103"}
    assert first.booked + second.booked == 3 and marked(env) == {1, 2, 3}
    ledger = InvoiceLedger(env.store, "noord")
    assert {ledger.get(i).king_fact for i in (1, 2, 3)} == {"26000101", "26000102", "26000103"}


def test_every_key_we_post_is_the_key_we_look_up(env, monkeypatch):
    # Qics holds the number with a leading space and a trailing non-breaking space
    reload(env, lambda f: qics_invoice(f, "N2026002").update(InvoiceNumber=" N2026002\u00a0"))
    env.faults("king", {"kind": "drop_after_commit", "operations": ["CreateJournaalpost"], "count": 3})
    grace(monkeypatch, 0)
    run(env)
    run(env)
    assert_booked_once(env, BOOKABLE)
    assert marked(env) == {1, 2, 3}


# -- timing: one run never posts twice; a worker past its claim cannot post ----------------------


def test_a_slow_king_does_not_make_one_run_post_an_invoice_twice(env, monkeypatch):
    # two "try again later" answers, then a request King commits only after we gave up on it
    grace(monkeypatch, 2)
    env.faults(
        "king",
        {"kind": "http_429", "operations": ["CreateJournaalpost"], "count": 2, "retry_after": 1},
        {"kind": "latency", "operations": ["CreateJournaalpost"], "count": 1, "latency_seconds": 4.5},
    )
    report = run(env)
    assert "N2026001" in report.waiting and "N2026001" not in report.failures
    time.sleep(2.5)  # King has committed the slow request by now
    report = run(env)
    assert_booked_once(env, BOOKABLE)
    assert marked(env) == {1, 2, 3}


def test_a_worker_frozen_past_its_claim_cannot_post_after_another_run_took_over(env, monkeypatch):
    frozen, resume = threading.Event(), threading.Event()
    stalled = exporter(env)
    post = stalled.king.post_journal_entry

    def freeze_before_posting(rows, *args, **kwargs):
        if rows[0]["FACT"] == "N2026001" and not frozen.is_set():
            frozen.set()
            resume.wait(60)  # a paused VM: the claim's lease runs out meanwhile
        return post(rows, *args, **kwargs)

    monkeypatch.setattr(stalled.king, "post_journal_entry", freeze_before_posting)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("report", stalled.run()))
    worker.start()
    assert frozen.wait(60)
    with env.store.transaction() as conn:  # the freeze outlasts the claim's lease (and any grace)
        conn.execute(
            invoice_exports.update()
            .where(invoice_exports.c.invoice_id == 1)
            .values(lease_until=utcnow() - timedelta(seconds=1), sent_at=utcnow() - timedelta(hours=2))
        )
    taker = run(env)
    assert taker.booked >= 1 and "N2026001" in bookings(env)
    resume.set()
    worker.join(60)
    assert not worker.is_alive()
    assert len({r["GRPROW"] for r in bookings(env)["N2026001"]}) == 1
    assert outcome["report"].waiting.get("N2026001", "").startswith("taken over by another run")
    stalled.king.close()


def test_the_claim_lease_covers_the_hooks_worst_case_and_refuses_a_call_that_outlives_it(env, monkeypatch):
    from king_qics.errors import ConfigurationError

    export = exporter(env)
    king = export.king
    assert export.lease.total_seconds() >= king.max_attempts * king.attempt_deadline
    assert king.attempt_deadline == 3 * king.timeout
    set_king_extra(monkeypatch, timeout=4 * 3600)
    with pytest.raises(ConfigurationError, match="longer than"):
        exporter(env).export()
    assert "CreateJournaalpost" not in env.calls("king")


def test_a_repost_whose_outcome_is_unknown_again_stays_pending_it_is_not_a_failure(env, monkeypatch):
    env.faults("king", {"kind": "http_500", "operations": ["CreateJournaalpost"], "count": 1})
    first = run(env)
    assert "N2026001" in first.waiting
    grace(monkeypatch, 0)
    env.faults("king", {"kind": "drop_after_commit", "operations": ["CreateJournaalpost"], "count": 1})
    second = run(env)
    assert "N2026001" not in second.failures and 1 in marked(env) and 1 not in errors(env)
    assert_booked_once(env, BOOKABLE)


def test_a_repost_that_king_commits_slowly_waits_for_the_look_up(env, monkeypatch):
    env.faults("king", {"kind": "http_500", "operations": ["CreateJournaalpost"], "count": 1})
    run(env)
    grace(monkeypatch, 0)
    env.faults(
        "king", {"kind": "latency", "operations": ["CreateJournaalpost"], "count": 1, "latency_seconds": 4.5}
    )
    second = run(env)
    assert "N2026001" not in second.failures and 1 not in errors(env)
    assert "outcome unknown" in second.waiting["N2026001"]
    time.sleep(2)
    run(env)
    assert_booked_once(env, BOOKABLE)
    assert 1 in marked(env)


# -- dates ---------------------------------------------------------------------------------------


def test_an_invoice_date_given_as_a_utc_date_time_counts_in_amsterdam(env):
    # 2026-09-30T22:30Z is 1 October 00:30 in Amsterdam: on the go-live date, in period 10
    reload(env, lambda f: qics_invoice(f, "N2025099").update(InvoiceDate="2026-09-30T22:30:00Z"))
    run(env)
    rows = bookings(env)["N2025099"]
    assert (rows[0]["JR"], rows[0]["PN"], rows[0]["DAT"]) == (2026, 10, "2026-10-01")
    assert total(rows) == Decimal("266.20")


def export_marker(company_id: int, invoice_id: int) -> str:
    from king_qics.sync.invoices import booking_marker

    return booking_marker(company_id, invoice_id)


def test_grace_bridge_is_gone():
    assert not hasattr(inv, "OUTCOME_GRACE")  # the grace is the King profile's, not a module global
