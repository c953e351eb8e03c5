"""The King sales booking of a Qics invoice (sync.invoices.booking and .identity): rows per account,
VAT code and cost center, signs, rounding to the cent, and what cannot be booked. No I/O."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from king_qics.sync.invoices import InvoiceError, KingRefs, build_booking


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
