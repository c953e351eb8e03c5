"""The King sales booking of one Qics invoice: amounts, rows, rounding. Pure: no I/O. Its keys (FACT,
the marker, the day) come from sync.invoices.identity."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from king_qics.sync.invoices.identity import InvoiceError, booking_marker, invoice_day, invoice_fact

CENT = Decimal("0.01")
KING_VAT_TOLERANCE = Decimal("0.02")  # what King accepts between BEDRBTW and BEDRBOEK x PERC
OMSCHR_LENGTH = 40


class NothingToBook(InvoiceError):
    """Every line nets to zero: the invoice is skipped, not failed."""


# -- amounts -------------------------------------------------------------------------------------------


def money(value: Any, what: str) -> Decimal:
    """A Qics amount as Decimal (never float); None/'' is an error."""
    if value is None or value == "":
        raise InvoiceError(f"{what} is missing")
    if isinstance(value, float):
        raise TypeError(f"{what}: floats are not accepted for money")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InvoiceError(f"{what} is not a number: {value!r}") from None
    if not number.is_finite():
        raise InvoiceError(f"{what} is not a number: {value!r}")
    return number


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _spread(diff: Decimal, weights: list[tuple[Decimal, int]], apply) -> None:
    """Put a difference of whole cents, one cent at a time, on the items first in ``weights``
    order ((sort key, index) sorted ascending); ``apply(index, cent)`` takes each cent."""
    order = [index for _, index in sorted(weights)]
    step = CENT if diff > 0 else -CENT
    position = 0
    while diff != 0:
        apply(order[position % len(order)], step)
        diff -= step
        position += 1


@dataclass(frozen=True)
class FiscalPeriod:
    year: int
    period: int
    start: date
    end: date  # inclusive


@dataclass
class KingRefs:
    """What the builder checks an invoice against, read from King once per run."""

    periods: int  # BASFIN.AANTPER
    period_info: dict[str, Any]  # PERIODEINFO (closed-period fields)
    vat_codes: dict[int, Decimal]  # BTW.NR -> PERC
    gl_accounts: set[int]  # GRB.NR
    cost_centers: set[int]  # KPL.NR
    debtors: set[int] = field(default_factory=set)  # DEB.NR of the debtors this run needs
    # King's own period dates (GetAdmInfo, the profile's period_dates_table); empty: calendar
    period_dates: list[FiscalPeriod] = field(default_factory=list)

    def fiscal(self, day: date) -> tuple[int, int]:
        """(fiscal year, period) of a booking date: from King's period dates (so a broken fiscal
        year or 13 periods of four weeks book right), else calendar years of equal periods."""
        if self.period_dates:
            for period in self.period_dates:
                if period.start <= day <= period.end and period.period != 14:
                    return period.year, period.period
            raise InvoiceError(f"{day} lies in no fiscal period King knows (its period dates); open the year")
        if self.periods == 12:
            return day.year, day.month
        if self.periods > 0 and 12 % self.periods == 0:
            return day.year, (day.month - 1) // (12 // self.periods) + 1
        raise InvoiceError(
            f"King administration has {self.periods} periods a year and King gave no period dates; "
            "without them only divisors of 12 are supported"
        )

    def closed(self, year: int, period: int) -> bool:
        """Closed for normal users or definitively (King lets the API user post there; we do not)."""
        info = self.period_info

        def upto(year_field: str, period_field: str) -> bool:
            closed_year, closed_period = info.get(year_field), info.get(period_field)
            if not isinstance(closed_year, int) or closed_year <= 0:
                return False
            return (year, period) <= (closed_year, closed_period if isinstance(closed_period, int) else 14)

        return upto("JRAFGESL", "PNAFGESL") or upto("JRAFGESLGEBR", "PNAFGESLGEBR")


@dataclass
class Booking:
    """What we post for one invoice (and what a booking found in King must match to be adopted)."""

    invoice_id: int
    fact: str
    day: date
    year: int
    period: int
    debtor: int
    marker: str
    rows: list[dict[str, Any]]  # BOE rows, amounts as Decimal
    total: Decimal  # incl. VAT, signed as booked

    def to_json(self) -> str:
        return json.dumps(self.rows, default=json_default, sort_keys=True)


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def booking_from_json(text: str, invoice_id: int, marker_field: str) -> Booking:
    """A booking as stored in the ledger (``booking_json``: the BOE rows as sent)."""
    rows = json.loads(text)
    for row in rows:
        for name in ("BEDRBOEK", "BEDRBTW"):
            if row.get(name) is not None:
                row[name] = Decimal(row[name])
        for name in ("DAT", "DATVERV"):
            if row.get(name):
                row[name] = date.fromisoformat(row[name])
    first = rows[0]
    total = sum((row["BEDRBOEK"] + row["BEDRBTW"] for row in rows), Decimal(0))
    return Booking(
        invoice_id, first["FACT"], first["DAT"], first["JR"], first["PN"], first["REK"],
        first.get(marker_field, ""), rows, total,
    )  # fmt: skip


def _int_code(value: Any, what: str) -> int:
    text = str(value).strip() if value is not None else ""
    if not text.isdigit():
        raise InvoiceError(f"{what} {value!r} is not a King number")
    return int(text)


def description(invoice: dict, fact: str, credit_note: bool) -> str:
    kind = "Creditnota" if credit_note else "Factuur"
    text = (invoice.get("InvoiceText") or invoice.get("customer_name") or "").strip()
    return f"{kind} {fact} {text}".strip()[:OMSCHR_LENGTH]


def build_booking(
    invoice: dict, *, journal: int, refs: KingRefs, company_id: int, marker_field: str, credit_note_type: str
) -> Booking:
    """The King sales booking of one Qics invoice snapshot (with ``lines``, ``customer_code``, and per
    line ``vat_code`` and ``cost_center_code``); ``marker_field`` (King profile) carries the marker,
    ``credit_note_type`` (Qics profile) is the InvoiceHeaderType of a credit note. Raises
    InvoiceError when it cannot be booked. Whether
    its period is closed is the caller's question: a closed period may hold a booking made by hand.

    One BOE row per (revenue account, VAT code, cost center); BEDRBOEK = net, BEDRBTW = VAT, both
    signed (negative for a credit note). The rows sum exactly to the invoice header's totals: net
    cents from rounding go to the largest rows; the VAT of each code is what its rounding gives
    (``vat_per_code``), so a cent lands on the code that produced it.
    """
    fact = invoice_fact(invoice.get("InvoiceNumber"))
    day = invoice_day(invoice.get("InvoiceDate"))
    if invoice.get("customer_code") in (None, ""):
        customer = invoice.get("InvoiceCustomerCompanyId") or invoice.get("CustomerCompanyId")
        raise InvoiceError(
            f"the invoice's customer (CustomerCompanyId {customer}) is missing or unknown in Qics"
        )
    debtor = _int_code(invoice.get("customer_code"), "customer code")
    if debtor not in refs.debtors:
        raise InvoiceError(f"debtor {debtor} (customer code) does not exist in King")
    year, period = refs.fiscal(day)

    header_net = money(invoice.get("TotalAmountExclVat"), "TotalAmountExclVat")
    header_vat = money(invoice.get("TotalVatAmount"), "TotalVatAmount")
    header_incl = money(invoice.get("TotalAmountInclVat"), "TotalAmountInclVat")
    if header_net + header_vat != header_incl:
        raise InvoiceError(
            f"invoice totals do not add up: {header_net} + {header_vat} VAT != {header_incl} incl. VAT"
        )
    # Credit notes are negative bookings; a credit note Qics reports with positive amounts is negated.
    credit_note = invoice.get("InvoiceHeaderType") == credit_note_type
    sign = Decimal(-1) if credit_note and header_incl > 0 else Decimal(1)

    lines = invoice.get("lines") or []
    if not lines:
        raise InvoiceError("the invoice has no lines")
    rows, line_vats = _rows_of(lines, refs)
    tolerance = CENT * len(lines)
    net_diff = header_net - sum((row["net"] for row in rows), Decimal(0))
    if abs(net_diff) > tolerance:
        raise InvoiceError(
            f"the lines' net amounts sum to {header_net - net_diff}, the invoice says {header_net}"
        )
    if net_diff:
        _spread(net_diff, [(-abs(row["net"]), i) for i, row in enumerate(rows)], _adder(rows, "net"))
    targets = vat_per_code(rows, refs.vat_codes, header_vat, line_vats, tolerance)
    for code, target in targets.items():
        _vat_of_rows([row for row in rows if row["vat_code"] == code], refs.vat_codes[code], target)
    for row in rows:
        expected = abs(row["net"]) * refs.vat_codes[row["vat_code"]] / 100
        if abs(abs(row["vat"]) - expected) > KING_VAT_TOLERANCE:
            raise InvoiceError(
                f"VAT {row['vat']} on {row['net']} does not match VAT code {row['vat_code']} "
                f"({refs.vat_codes[row['vat_code']]}%) within King's tolerance"
            )
    rows = [row for row in rows if row["net"] or row["vat"]]
    if not rows:
        raise NothingToBook("nothing to book: every line nets to zero")

    marker = booking_marker(company_id, invoice["InvoiceHeaderId"])
    due = invoice.get("DueDate")
    text = description(invoice, fact, credit_note)
    boe = []
    for row in rows:
        values = {
            "DAGB": journal,
            "JR": year,
            "PN": period,
            "DAT": day,
            "REK": debtor,
            "TEGREK": row["account"],
            "BTW": row["vat_code"],
            "BEDRBOEK": row["net"] * sign,
            "BEDRBTW": row["vat"] * sign,
            "FACT": fact,
            "BOEKSTUK": fact,
            "OMSCHR": text,
            marker_field: marker,
        }
        if due:
            values["DATVERV"] = invoice_day(due, "DueDate")
        if row["kpl"] is not None:
            values["KPL"] = row["kpl"]
        boe.append(values)
    total = sum((row["BEDRBOEK"] + row["BEDRBTW"] for row in boe), Decimal(0))
    assert total == header_incl * sign, "rows must sum to the invoice total"  # noqa: S101 - invariant
    return Booking(int(invoice["InvoiceHeaderId"]), fact, day, year, period, debtor, marker, boe, total)


def _adder(rows: list[dict], name: str):
    def add(index: int, cent: Decimal) -> None:
        rows[index][name] += cent

    return add


def _rows_of(lines: list[dict], refs: KingRefs) -> tuple[list[dict], dict[int, Decimal] | None]:
    """Lines grouped per (account, VAT code, cost center) with their net sums; plus the lines' own
    VAT per code (None when a line has none)."""
    groups: dict[tuple, dict] = {}
    line_vats: dict[int, Decimal] | None = {}
    for position, line in enumerate(lines, start=1):
        what = f"line {position}"
        net = cents(money(line.get("AmountExclVat"), f"{what} AmountExclVat"))
        if line.get("vat_code") in (None, ""):
            raise InvoiceError(f"{what}: no VAT code (VatCodeId {line.get('VatCodeId')} unknown in Qics)")
        vat_code = _int_code(line.get("vat_code"), f"{what}: VAT code")
        if vat_code not in refs.vat_codes:
            raise InvoiceError(f"{what}: VAT code {vat_code} does not exist in King")
        king_percentage = refs.vat_codes[vat_code]
        if line.get("VatPercentage") not in (None, ""):
            percentage = money(line.get("VatPercentage"), f"{what} VatPercentage")
            if percentage != king_percentage:
                raise InvoiceError(
                    f"{what}: VAT code {vat_code} is {king_percentage}% in King "
                    f"but {percentage}% on the invoice"
                )
        if line.get("VatAmount") in (None, ""):
            line_vats = None
        elif line_vats is not None:
            vat = cents(money(line.get("VatAmount"), f"{what} VatAmount"))
            line_vats[vat_code] = line_vats.get(vat_code, Decimal(0)) + vat
        if line.get("GLAccountRevenue") in (None, ""):
            raise InvoiceError(f"{what}: no revenue account (GLAccountRevenue)")
        account = _int_code(line.get("GLAccountRevenue"), f"{what}: revenue account")
        if account not in refs.gl_accounts:
            raise InvoiceError(f"{what}: revenue account {account} does not exist in King")
        cost_center = None
        if line.get("CostCenterId") not in (None, ""):
            if line.get("cost_center_code") in (None, ""):
                raise InvoiceError(f"{what}: cost center {line.get('CostCenterId')} unknown in Qics")
            cost_center = _int_code(line.get("cost_center_code"), f"{what}: cost center")
            if cost_center not in refs.cost_centers:
                raise InvoiceError(f"{what}: cost center {cost_center} does not exist in King")
        group = groups.setdefault(
            (account, vat_code, cost_center),
            {
                "account": account,
                "vat_code": vat_code,
                "kpl": cost_center,
                "net": Decimal(0),
                "vat": Decimal(0),
            },
        )
        group["net"] += net
    return list(groups.values()), line_vats


def vat_per_code(
    rows: list[dict],
    rates: dict[int, Decimal],
    header_vat: Decimal,
    line_vats: dict[int, Decimal] | None,
    tolerance: Decimal,
) -> dict[int, Decimal]:
    """The VAT of each code, summing exactly to the header's VAT.

    Per code: round(sum of the code's net x rate) when those add up to the header (VAT computed per
    code, the usual invoice rule), else the lines' own VAT amounts when those add up (VAT per line);
    else the per-code amounts with the remaining cents given to the codes whose exact VAT was
    rounded furthest the other way (largest remainder): each cent stays with its rate.
    """
    nets: dict[int, Decimal] = {}
    for row in rows:
        nets[row["vat_code"]] = nets.get(row["vat_code"], Decimal(0)) + row["net"]
    exact = {code: net * rates[code] / 100 for code, net in nets.items()}
    per_code = {code: cents(value) for code, value in exact.items()}
    if sum(per_code.values(), Decimal(0)) == header_vat:
        return per_code
    if line_vats is not None and sum(line_vats.values(), Decimal(0)) == header_vat:
        return {code: line_vats.get(code, Decimal(0)) for code in nets}
    diff = header_vat - sum(per_code.values(), Decimal(0))
    if abs(diff) > tolerance:
        raise InvoiceError(
            f"the lines' VAT amounts sum to {header_vat - diff}, the invoice says {header_vat}"
        )
    eligible = [code for code in per_code if rates[code] != 0]
    if not eligible:
        raise InvoiceError(f"VAT of {header_vat} on an invoice whose lines have only 0% VAT codes")
    direction = 1 if diff > 0 else -1
    codes = sorted(eligible)
    weights = [(-(exact[code] - per_code[code]) * direction, i) for i, code in enumerate(codes)]
    _spread(diff, weights, lambda i, cent: per_code.__setitem__(codes[i], per_code[codes[i]] + cent))
    return per_code


def _vat_of_rows(rows: list[dict], rate: Decimal, target: Decimal) -> None:
    """Give the rows of one VAT code their VAT: each its own rounding, the code's remaining cents
    to the rows rounded furthest the other way."""
    exact = [row["net"] * rate / 100 for row in rows]
    for row, value in zip(rows, exact, strict=True):
        row["vat"] = cents(value)
    diff = target - sum((row["vat"] for row in rows), Decimal(0))
    if diff:
        direction = 1 if diff > 0 else -1
        pairs = enumerate(zip(rows, exact, strict=True))
        weights = [(-(value - row["vat"]) * direction, i) for i, (row, value) in pairs]
        _spread(diff, weights, _adder(rows, "vat"))
