"""Invoice export Qics -> King: the booking builder, and the exactly-once protocol over real HTTP
against both sandboxes (lost answers, crashes between steps, concurrent runs)."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest

from king_qics.hooks.king import KingFinanceHook
from king_qics.state import InvoiceLedger, invoice_exports, utcnow
from king_qics.sync.invoices import InvoiceError, KingRefs, build_booking
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

# -- the booking builder (no I/O) ------------------------------------------------------------------


def refs(**overrides) -> KingRefs:
    values = {
        "periods": 12,
        "period_info": {"JRAFGESL": 2025, "PNAFGESL": 14, "JRAFGESLGEBR": 2026, "PNAFGESLGEBR": 9},
        "vat_codes": {0: Decimal(0), 1: Decimal(21), 2: Decimal(9), 3: Decimal(0)},
        "gl_accounts": {8000, 8010, 8020},
        "cost_centers": {100, 200},
        "debtors": {10000, 10001},
    }
    return KingRefs(**{**values, **overrides})


def line(net, vat, code="1", gl="8000", pct=None, **extra) -> dict:
    pct = pct if pct is not None else {"0": "0", "1": "21", "2": "9", "3": "0"}[code]
    return {
        "AmountExclVat": Decimal(net),
        "VatAmount": None if vat is None else Decimal(vat),
        "VatPercentage": Decimal(pct),
        "vat_code": code,
        "GLAccountRevenue": gl,
        **extra,
    }


def invoice(lines, net, vat, incl=None, **extra) -> dict:
    net, vat = Decimal(net), Decimal(vat)
    return {
        "InvoiceHeaderId": 1,
        "InvoiceNumber": "N1",
        "InvoiceDate": "2026-10-12",
        "DueDate": "2026-10-26",
        "InvoiceHeaderType": "Invoice",
        "customer_code": "10001",
        "TotalAmountExclVat": net,
        "TotalVatAmount": vat,
        "TotalAmountInclVat": Decimal(incl) if incl is not None else net + vat,
        "lines": lines,
        **extra,
    }


def book(data, **kwargs):
    profiles = {"marker_field": "OPM", "credit_note_type": "CreditNote"}  # the profiles' defaults
    return build_booking(data, company_id=1, **profiles, **kwargs)


def amounts(booking):
    return [(r["TEGREK"], r["BTW"], r["BEDRBOEK"], r["BEDRBTW"]) for r in booking.rows]


def test_builder_multi_line_two_vat_codes_groups_per_account_and_code():
    lines = [
        line("950.00", "199.50"),
        line("440.00", "92.40", gl="8010"),
        line("45.50", "4.10", code="2", gl="8020"),
        line("100.00", "21.00"),  # same account + code as the first: one row
    ]
    booking = book(invoice(lines, "1535.50", "317.00"), journal=70, refs=refs())
    assert amounts(booking) == [
        (8000, 1, Decimal("1050.00"), Decimal("220.50")),
        (8010, 1, Decimal("440.00"), Decimal("92.40")),
        (8020, 2, Decimal("45.50"), Decimal("4.10")),
    ]
    assert booking.total == Decimal("1852.50")
    first = booking.rows[0]
    assert (first["DAGB"], first["JR"], first["PN"], first["REK"]) == (70, 2026, 10, 10001)
    assert first["FACT"] == first["BOEKSTUK"] == "N1"
    assert first["DAT"] == date(2026, 10, 12) and first["DATVERV"] == date(2026, 10, 26)
    assert len(first["OMSCHR"]) <= 40
    assert all(isinstance(r["BEDRBOEK"], Decimal) and isinstance(r["BEDRBTW"], Decimal) for r in booking.rows)


def test_builder_credit_note_is_negative_and_sums_to_total():
    negative = invoice([line("-190.00", "-39.90")], "-190.00", "-39.90", InvoiceHeaderType="CreditNote")
    assert amounts(book(negative, journal=70, refs=refs())) == [
        (8000, 1, Decimal("-190.00"), Decimal("-39.90"))
    ]
    # a credit note Qics reports with positive amounts is booked negative all the same
    positive = invoice([line("190.00", "39.90")], "190.00", "39.90", InvoiceHeaderType="CreditNote")
    booking = book(positive, journal=70, refs=refs())
    assert amounts(booking) == [(8000, 1, Decimal("-190.00"), Decimal("-39.90"))]
    assert booking.total == Decimal("-229.90")


def test_builder_rounding_per_line_vs_header_is_spread_to_the_cent():
    # 3 x 0.50 at 9 %: per line 0.045 -> 0.05 (0.15 in all); the header rounds 1.50 x 9 % = 0.14
    lines = [
        line("0.50", None, code="2"),
        line("0.50", None, code="2"),
        line("0.50", None, code="2", gl="8010"),
    ]
    booking = book(invoice(lines, "1.50", "0.14"), journal=70, refs=refs())
    assert amounts(booking) == [
        (8000, 2, Decimal("1.00"), Decimal("0.09")),
        (8010, 2, Decimal("0.50"), Decimal("0.05")),
    ]
    assert sum(r["BEDRBOEK"] + r["BEDRBTW"] for r in booking.rows) == Decimal("1.64")
    # line VAT given with more decimals is rounded half-up to the cent
    lines = [line("12.65", "2.6565"), line("142.50", "29.925")]
    booking = book(invoice(lines, "155.15", "32.59"), journal=70, refs=refs())
    assert amounts(booking) == [(8000, 1, Decimal("155.15"), Decimal("32.59"))]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"customer_code": "19999"}, "debtor 19999 (customer code) does not exist in King"),
        ({"customer_code": None}, "is missing or unknown in Qics"),
        ({"lines": [line("100.00", "21.00", code="7", pct="21")]}, "VAT code 7 does not exist in King"),
        ({"lines": [line("100.00", "21.00", gl="8999")]}, "revenue account 8999 does not exist in King"),
        ({"lines": [line("100.00", "21.00", pct="19")]}, "is 21% in King but 19% on the invoice"),
        ({"lines": [line("100.00", "21.00", vat_code=None)]}, "no VAT code"),
        ({"lines": []}, "the invoice has no lines"),
        ({"lines": [line("90.00", "18.90")]}, "net amounts sum to 90.00, the invoice says 100.00"),
        ({"TotalAmountInclVat": Decimal("121.01")}, "invoice totals do not add up"),
        ({"InvoiceNumber": "X" * 21}, "does not fit King's FACT"),
        ({"lines": [line("100.00", "21.00", CostCenterId=5, cost_center_code="999")]}, "cost center 999"),
    ],
)
def test_builder_refuses_what_cannot_be_booked(change, reason):
    data = {**invoice([line("100.00", "21.00")], "100.00", "21.00"), **change}
    with pytest.raises(InvoiceError, match=None) as info:
        book(data, journal=70, refs=refs())
    assert reason in info.value.reason


def test_builder_puts_each_vat_cent_on_the_code_whose_rounding_produced_it():
    # 100.00 at 21 % is 21.00 exactly; 3 x 0.50 at 9 % is 0.135 -> 0.14 for the code (0.05 per line)
    lines = [line("100.00", None), *(line("0.50", None, code="2", gl="8010") for _ in range(3))]
    booking = book(invoice(lines, "101.50", "21.14"), journal=70, refs=refs())
    assert amounts(booking) == [
        (8000, 1, Decimal("100.00"), Decimal("21.00")),
        (8010, 2, Decimal("1.50"), Decimal("0.14")),
    ]
    # two rows of one 9 % code: the code's 0.14 split by their own rounding, rows sum to the header
    lines = [line("100.00", None), line("0.50", None, code="2", gl="8010"), line("1.00", None, code="2")]
    booking = book(invoice(lines, "101.50", "21.14"), journal=70, refs=refs())
    assert amounts(booking) == [
        (8000, 1, Decimal("100.00"), Decimal("21.00")),
        (8010, 2, Decimal("0.50"), Decimal("0.05")),
        (8000, 2, Decimal("1.00"), Decimal("0.09")),
    ]
    assert booking.total == Decimal("122.64")


def test_builder_normalises_the_invoice_number_and_marks_the_booking():
    booking = book(
        invoice([line("100.00", "21.00")], "100.00", "21.00", InvoiceNumber=" N1\u00a0"),
        journal=70,
        refs=refs(),
    )
    assert booking.fact == "N1" and {r["FACT"] for r in booking.rows} == {"N1"}
    assert booking.rows[0]["OPM"] == "king-qics-sync: Qics company 1 invoice 1" == booking.marker


def test_builder_cost_center_and_quarters():
    lines = [line("100.00", "21.00", CostCenterId=5, cost_center_code="100")]
    booking = book(invoice(lines, "100.00", "21.00"), journal=70, refs=refs(periods=4, period_info={}))
    assert booking.rows[0]["KPL"] == 100 and booking.rows[0]["PN"] == 4


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
