"""Invoice export Qics -> King for one administration: select -> build -> claim -> book -> mark.

Each processed QicsMilestones invoice dated on/after the administration's ``book_invoices_from``
becomes exactly one sales booking in King (a split booking when it has several revenue-account /
VAT-code / cost-center groups), with the invoice PDF attached, and is then marked exported in Qics
with an EntityState record carrying King's booking key.

Exactly once rests on the export ledger (``king_qics.state.InvoiceLedger``, table
``invoice_exports``): one row per invoice whose state is the recovery point
``selected -> booking_sent -> booked -> pdf_attached -> marked`` (or ``skipped``). Every move is its
own small transaction, written before and after each call to King or Qics, and conditional on the
run's claim (``owner``), so two runs can never both post one invoice. An invoice found in
``booking_sent`` (crash, timeout, lost answer) is looked up in King (BOE by journal, year and
invoice number) before anything is posted again; an invoice is also looked up before its first
post (protects against a lost or reset state store).

See docs/invoice_export.md for the states, the amount rules and what is assumed.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from king_qics.errors import (
    AuthenticationError,
    KingQicsError,
    OutcomeUnknownError,
    ProtocolError,
    RecordValidationError,
    TransientError,
)
from king_qics.hooks.qics import odata_filter
from king_qics.state import EXPORT_DONE_STATES, EXPORT_OPEN_STATES, InvoiceLedger, StateStore, utcnow

log = logging.getLogger(__name__)

DATA_SOURCE = "king-qics-sync"
CENT = Decimal("0.01")
KING_VAT_TOLERANCE = Decimal("0.02")  # what King accepts between BEDRBTW and BEDRBOEK x PERC
# A booking whose answer was lost is re-posted (after a lookup that finds nothing) only once it was
# sent at least this long ago: a slow King may still be committing a request that timed out here.
OUTCOME_GRACE = timedelta(minutes=5)
# A claim left behind by a run that died without releasing it (SIGKILL, lost worker) expires after
# this; it must exceed the longest single call (hook timeout x attempts), so a live run never
# loses an invoice it is posting.
CLAIM_LEASE = timedelta(minutes=30)
MAX_POSTS_PER_RUN = 2  # posts of one invoice in one run (the first + one after a not-found lookup)
MAX_CONSECUTIVE_TRANSIENT = 3  # then the API is considered down: stop, let Airflow retry the task
MAX_KEYED_DEBTOR_LOOKUPS = 50  # more debtors than this: read DEB.NR in full instead
FACT_LENGTH, OMSCHR_LENGTH, MESSAGE_LENGTH = 20, 40, 1000


class InvoiceError(Exception):
    """This invoice cannot be booked as it is (data or configuration); the others go on."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class InvoicePending(Exception):
    """This invoice waits for something (its PDF, an unknown outcome to settle); not an error."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class SimulatedCrash(BaseException):
    """Raised by tests (through ``InvoiceExport.crash_after``) to stop a run dead at a step."""


# -- amounts --------------------------------------------------------------------------------------


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


def _spread(diff: Decimal, rows: list[dict], field_name: str, eligible: list[int]) -> None:
    """Put a difference of whole cents on the rows, one cent at a time, largest net amount first."""
    if diff == 0:
        return
    order = sorted(eligible, key=lambda i: (-abs(rows[i]["net"]), i))
    step = CENT if diff > 0 else -CENT
    position = 0
    while diff != 0:
        rows[order[position % len(order)]][field_name] += step
        diff -= step
        position += 1


@dataclass
class KingRefs:
    """What the builder checks an invoice against, read from King once per run."""

    periods: int  # BASFIN.AANTPER
    period_info: dict[str, Any]  # PERIODEINFO (closed-period fields)
    vat_codes: dict[int, Decimal]  # BTW.NR -> PERC
    gl_accounts: set[int]  # GRB.NR
    cost_centers: set[int]  # KPL.NR
    debtors: set[int] = field(default_factory=set)  # DEB.NR of the debtors this run needs

    def period_of(self, day: date) -> int:
        if self.periods == 12:
            return day.month
        if self.periods > 0 and 12 % self.periods == 0:
            return (day.month - 1) // (12 // self.periods) + 1
        raise InvoiceError(
            f"King administration has {self.periods} periods a year; only divisors of 12 are supported"
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
    invoice_id: int
    invoice_number: str
    year: int
    period: int
    rows: list[dict[str, Any]]  # BOE rows, amounts as Decimal
    total: Decimal  # incl. VAT, signed as booked

    def to_json(self) -> str:
        return json.dumps(self.rows, default=_json_default, sort_keys=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def rows_from_json(text: str) -> list[dict[str, Any]]:
    """BOE rows as stored in the ledger, back to Decimal amounts and dates."""
    rows = json.loads(text)
    for row in rows:
        for name in ("BEDRBOEK", "BEDRBTW"):
            if row.get(name) is not None:
                row[name] = Decimal(row[name])
        for name in ("DAT", "DATVERV"):
            if row.get(name):
                row[name] = date.fromisoformat(row[name])
    return rows


def _day(value: Any, what: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError):
        raise InvoiceError(f"{what} is not a date: {value!r}") from None


def _int_code(value: Any, what: str) -> int:
    text = str(value).strip() if value is not None else ""
    if not text.isdigit():
        raise InvoiceError(f"{what} {value!r} is not a King number")
    return int(text)


def description(invoice: dict) -> str:
    kind = "Creditnota" if invoice.get("InvoiceHeaderType") == "CreditNote" else "Factuur"
    text = (invoice.get("InvoiceText") or invoice.get("customer_name") or "").strip()
    return f"{kind} {invoice.get('InvoiceNumber')} {text}".strip()[:OMSCHR_LENGTH]


def build_booking(invoice: dict, *, journal: int, refs: KingRefs) -> Booking:
    """The King sales booking of one Qics invoice (snapshot with ``lines``, ``customer_code``, and per
    line ``vat_code`` and ``cost_center_code``). Raises InvoiceError when it cannot be booked.

    One BOE row per (revenue account, VAT code, cost center); BEDRBOEK = net, BEDRBTW = VAT, both
    signed (negative for a credit note). VAT is taken per line (the line's VatAmount, else net x
    percentage rounded half-up to the cent); any difference to the invoice header's totals (whole
    cents from per-invoice rounding, at most one cent per line) is spread over the rows, largest
    first, so the rows sum exactly to the invoice totals.
    """
    number = str(invoice.get("InvoiceNumber") or "").strip()
    if not number:
        raise InvoiceError("the invoice has no invoice number")
    if len(number) > FACT_LENGTH or "\t" in number:
        raise InvoiceError(f"invoice number {number!r} does not fit King's FACT (max {FACT_LENGTH})")
    day = _day(invoice.get("InvoiceDate"), "InvoiceDate")
    if invoice.get("customer_code") in (None, ""):
        customer = invoice.get("InvoiceCustomerCompanyId") or invoice.get("CustomerCompanyId")
        raise InvoiceError(
            f"the invoice's customer (CustomerCompanyId {customer}) is missing or unknown in Qics"
        )
    debtor = _int_code(invoice.get("customer_code"), "customer code")
    if debtor not in refs.debtors:
        raise InvoiceError(f"debtor {debtor} (customer code) does not exist in King")
    period = refs.period_of(day)
    if refs.closed(day.year, period):
        raise InvoiceError(f"period {day.year}/{period} is closed in King; book it by hand or reopen it")

    header_net = money(invoice.get("TotalAmountExclVat"), "TotalAmountExclVat")
    header_vat = money(invoice.get("TotalVatAmount"), "TotalVatAmount")
    header_incl = money(invoice.get("TotalAmountInclVat"), "TotalAmountInclVat")
    if header_net + header_vat != header_incl:
        raise InvoiceError(
            f"invoice totals do not add up: {header_net} + {header_vat} VAT != {header_incl} incl. VAT"
        )
    # Credit notes are negative bookings; a credit note Qics reports with positive amounts is negated.
    sign = Decimal(-1) if invoice.get("InvoiceHeaderType") == "CreditNote" and header_incl > 0 else Decimal(1)

    lines = invoice.get("lines") or []
    if not lines:
        raise InvoiceError("the invoice has no lines")
    groups: dict[tuple, dict] = {}
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
        if line.get("VatAmount") not in (None, ""):
            vat = cents(money(line.get("VatAmount"), f"{what} VatAmount"))
        else:
            vat = cents(net * king_percentage / 100)
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
        group["vat"] += vat

    rows = list(groups.values())
    tolerance = CENT * len(lines)
    for name, header in (("net", header_net), ("vat", header_vat)):
        diff = header - sum((row[name] for row in rows), Decimal(0))
        if abs(diff) > tolerance:
            raise InvoiceError(
                f"the lines' {'net amounts' if name == 'net' else 'VAT amounts'} sum to "
                f"{header - diff}, the invoice says {header}"
            )
        eligible = [i for i, row in enumerate(rows) if name == "net" or refs.vat_codes[row["vat_code"]] != 0]
        if diff and not eligible:
            raise InvoiceError(f"VAT of {header} on an invoice whose lines have only 0% VAT codes")
        _spread(diff, rows, name, eligible or list(range(len(rows))))
    for row in rows:
        expected = abs(row["net"]) * refs.vat_codes[row["vat_code"]] / 100
        if abs(abs(row["vat"]) - expected) > KING_VAT_TOLERANCE:
            raise InvoiceError(
                f"VAT {row['vat']} on {row['net']} does not match VAT code {row['vat_code']} "
                f"({refs.vat_codes[row['vat_code']]}%) within King's tolerance"
            )
    rows = [row for row in rows if row["net"] or row["vat"]]
    if not rows:
        raise InvoiceError("nothing to book: every line nets to zero")  # the caller skips these

    due = invoice.get("DueDate")
    text = description(invoice)
    boe = []
    for row in rows:
        values = {
            "DAGB": journal,
            "JR": day.year,
            "PN": period,
            "DAT": day,
            "REK": debtor,
            "TEGREK": row["account"],
            "BTW": row["vat_code"],
            "BEDRBOEK": row["net"] * sign,
            "BEDRBTW": row["vat"] * sign,
            "FACT": number,
            "BOEKSTUK": number,
            "OMSCHR": text,
        }
        if due:
            values["DATVERV"] = _day(due, "DueDate")
        if row["kpl"] is not None:
            values["KPL"] = row["kpl"]
        boe.append(values)
    total = sum((row["BEDRBOEK"] + row["BEDRBTW"] for row in boe), Decimal(0))
    assert total == header_incl * sign, "rows must sum to the invoice total"  # noqa: S101 - invariant
    return Booking(int(invoice["InvoiceHeaderId"]), number, day.year, period, boe, total)


def check_pdf(content: bytes) -> str | None:
    """None when ``content`` is a readable PDF, else why not."""
    if not content.startswith(b"%PDF-"):
        return "the file Qics returns is not a PDF (no %PDF- header)"
    try:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(content), strict=False)
        if len(reader.pages) < 1:
            return "the PDF from Qics has no pages"
    except Exception as exc:  # noqa: BLE001 - any parse failure means: not a usable PDF
        return f"the PDF from Qics cannot be read ({type(exc).__name__})"
    return None


def pdf_filename(invoice_number: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in invoice_number)
    return f"{safe}.pdf"


# -- report ---------------------------------------------------------------------------------------


@dataclass
class ExportReport:
    administration: str
    dry_run: bool = False
    selected: int = 0  # invoices new or still open this run
    booked: int = 0  # posted by this run
    already_booked: int = 0  # found in King by lookup (a lost answer, a crash, or booked elsewhere)
    marked: int = 0  # marked exported in Qics by this run
    skipped: int = 0  # written off, zero, before the cutoff
    pending: int = 0  # waiting (PDF, unknown outcome settling, claimed by another run)
    failed: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)
    would_book: list[dict] = field(default_factory=list)  # dry run: the bookings it would post

    def counts(self) -> dict[str, Any]:
        return {
            "selected": self.selected,
            "booked": self.booked,
            "already_booked": self.already_booked,
            "marked": self.marked,
            "skipped": self.skipped,
            "pending": self.pending,
            "failed": self.failed,
            "dry_run": self.dry_run,
            "failures": dict(self.failures),
            "waiting": dict(self.waiting),
        }

    def fail(self, number: str, reason: str) -> None:
        self.failed += 1
        self.failures[number] = reason

    def wait(self, number: str, reason: str) -> None:
        self.pending += 1
        self.waiting[number] = reason

    def failure_table(self) -> str:
        return failure_table(self.failures)


def failure_table(failures: dict[str, str]) -> str:
    width = max([len("invoice"), *(len(key) for key in failures)])
    lines = [f"{'invoice'.ljust(width)}  reason", f"{'-' * width}  ------"]
    lines += [f"{key.ljust(width)}  {reason}" for key, reason in sorted(failures.items())]
    return "\n".join(lines)


# -- the flow -------------------------------------------------------------------------------------


class InvoiceExport:
    """Exports one administration's processed Qics invoices to King, exactly once."""

    data_source = DATA_SOURCE
    crash_after: str | None = None  # tests: raise SimulatedCrash right after this ledger state

    def __init__(self, administration, king, qics, store: StateStore, *, run_id: str | None = None):
        self.adm = administration
        self.king = king
        self.qics = qics
        self.store = store
        self.run_id = run_id
        self.ledger = InvoiceLedger(store, administration.id)
        # The claim owner: one per DAG run, so a retry of the run's export (its worker was killed
        # mid-invoice) takes over the claims its earlier try left; another run waits for CLAIM_LEASE.
        self.token = hashlib.sha256(f"run:{run_id}".encode()).hexdigest()[:32] if run_id else uuid.uuid4().hex
        self._pdfs: dict[int, bytes | None] = {}

    # -- select ---------------------------------------------------------------------------------

    def select(self, *, dry_run: bool = False, report: ExportReport | None = None) -> list[dict]:
        """Read the processed invoices since the cutoff; record new candidates (and written-off ones
        as skipped) in the ledger. Returns the candidate snapshots (with lines and codes)."""
        report = report or ExportReport(self.adm.id, dry_run=dry_run)
        cutoff = self.adm.book_invoices_from
        filter_ = odata_filter({"CompanyId": self.adm.company_id, "InvoiceHeaderState": "Processed"})
        filter_ += f" and InvoiceDate ge {cutoff.isoformat()}"
        headers = list(self.qics.iter_records("Invoice", filter=filter_, orderby="InvoiceHeaderId"))
        states = self.ledger.states()
        candidates = []
        for header in headers:
            invoice_id = int(header["InvoiceHeaderId"])
            state = states.get(invoice_id)
            if state in EXPORT_DONE_STATES or state in ("booking_sent", "booked", "pdf_attached"):
                continue  # done, or past the point where the snapshot may change
            day = _day(header.get("InvoiceDate"), "InvoiceDate")
            if day < cutoff:  # the query says so already; never trust one line of defence with money
                report.skipped += 1
                continue
            if header.get("IsWrittenOff"):
                report.skipped += 1
                if not dry_run:
                    self.ledger.skip(invoice_id, header.get("InvoiceNumber"), day, "fully written off")
                continue
            candidates.append(header)
        snapshots = self._snapshots(candidates)
        for snapshot in snapshots:
            if not dry_run:
                self.ledger.select(
                    snapshot["InvoiceHeaderId"],
                    snapshot.get("InvoiceNumber"),
                    _day(snapshot.get("InvoiceDate"), "InvoiceDate"),
                    json.dumps(snapshot, default=_json_default, sort_keys=True),
                )
        log.info(
            "%s invoice export: %d processed invoices since %s, %d candidates, %d skipped%s",
            self.adm.id,
            len(headers),
            cutoff,
            len(snapshots),
            report.skipped,
            " (dry run: ledger unchanged)" if dry_run else "",
        )
        return snapshots

    def _snapshots(self, headers: list[dict]) -> list[dict]:
        """Headers plus their lines, the customer code and per line the VAT and cost-center codes."""
        if not headers:
            return []
        by_id = {int(h["InvoiceHeaderId"]): {**h, "lines": []} for h in headers}
        ids = list(by_id)
        for start in range(0, len(ids), self.qics.lines_per_request):
            chunk = ids[start : start + self.qics.lines_per_request]
            line_filter = " or ".join(f"InvoiceHeaderId eq {i}" for i in chunk)
            for line in self.qics.iter_records("InvoiceLine", filter=line_filter, orderby="InvoiceLineId"):
                if int(line["InvoiceHeaderId"]) in by_id:
                    by_id[int(line["InvoiceHeaderId"])]["lines"].append(line)
        customers = {
            int(c["CustomerCompanyId"]): c
            for c in self.qics.iter_records(
                "CustomerCompany",
                filter=odata_filter({"CompanyId": self.adm.company_id}),
                select=["CustomerCompanyId", "CustomerCode", "Name"],
            )
        }
        vat_codes = {int(v["VatCodeId"]): v for v in self.qics.iter_records("VatCode")}
        cost_centers: dict[int, dict] = {}
        if any(line.get("CostCenterId") for inv in by_id.values() for line in inv["lines"]):
            cost_centers = {int(c["CostCenterId"]): c for c in self.qics.iter_records("CostCenter")}
        for invoice in by_id.values():
            customer_id = invoice.get("InvoiceCustomerCompanyId") or invoice.get("CustomerCompanyId")
            customer = customers.get(int(customer_id)) if customer_id is not None else None
            invoice["customer_code"] = customer.get("CustomerCode") if customer else None
            invoice["customer_name"] = customer.get("Name") if customer else None
            for line in invoice["lines"]:
                vat = vat_codes.get(int(line["VatCodeId"])) if line.get("VatCodeId") is not None else None
                line["vat_code"] = vat.get("Code") if vat else None
                center = cost_centers.get(int(line["CostCenterId"])) if line.get("CostCenterId") else None
                line["cost_center_code"] = center.get("Code") if center else None
        return list(by_id.values())

    # -- export ---------------------------------------------------------------------------------

    def run(self, *, dry_run: bool = False, full_refresh: bool = False) -> ExportReport:
        """Select and export in one go (what the tests and the dry run use)."""
        report = ExportReport(self.adm.id, dry_run=dry_run)
        snapshots = self.select(dry_run=dry_run, report=report)
        return self.export(
            dry_run=dry_run,
            report=report,
            snapshots=snapshots if dry_run else None,
            candidate_ids={int(s["InvoiceHeaderId"]) for s in snapshots},
        )

    def export(
        self,
        *,
        dry_run: bool = False,
        report: ExportReport | None = None,
        snapshots: list[dict] | None = None,
        candidate_ids: set[int] | None = None,
    ) -> ExportReport:
        """Work every open invoice of the ledger to ``marked`` (new ones and earlier failures).

        ``candidate_ids``: the invoices the select step saw as processed in Qics this run. A
        ``selected`` row not among them is not booked (Qics no longer lists it as processed); rows
        past ``selected`` are always worked on (they may be booked already).
        """
        report = report or ExportReport(self.adm.id, dry_run=dry_run)
        if dry_run:
            return self._dry_run(report, snapshots)
        rows = []
        for row in self.ledger.rows(EXPORT_OPEN_STATES):
            if candidate_ids is not None and row.state == "selected" and row.invoice_id not in candidate_ids:
                report.wait(
                    row.invoice_number or f"id {row.invoice_id}",
                    "not (or no longer) a processed invoice in Qics since the cutoff; not booked",
                )
                continue
            rows.append(row)
        report.selected += len(rows)
        if not rows:
            log.info("%s invoice export: nothing to export", self.adm.id)
            return report
        refs = self.king_refs(rows)
        transient_in_a_row = 0
        for row in rows:
            number = row.invoice_number or f"id {row.invoice_id}"
            if not self.ledger.claim(row.invoice_id, self.token, CLAIM_LEASE.total_seconds()):
                report.wait(number, "claimed by another run at the moment")
                continue
            try:
                self._export_one(row.invoice_id, refs, report)
                transient_in_a_row = 0
            except InvoicePending as exc:
                self.ledger.set(row.invoice_id, self.token, note=exc.reason, last_error=None)
                report.wait(number, exc.reason)
                transient_in_a_row = 0
            except InvoiceError as exc:
                self._failed(row.invoice_id, number, exc.reason, report)
                transient_in_a_row = 0
            except AuthenticationError:
                raise
            except TransientError as exc:
                self._failed(row.invoice_id, number, f"temporary: {exc}", report, tell_qics=False)
                transient_in_a_row += 1
                if transient_in_a_row >= MAX_CONSECUTIVE_TRANSIENT:
                    raise TransientError(
                        f"{transient_in_a_row} invoices in a row failed on API faults; stopping "
                        f"(the ledger keeps every step; a retry resumes). Last: {exc}"
                    ) from exc
            except KingQicsError as exc:  # protocol errors, refusals the steps did not expect
                self._failed(row.invoice_id, number, str(exc), report)
            finally:
                self.ledger.release(row.invoice_id, self.token)
        self._log(report)
        return report

    def king_refs(self, rows: Iterable) -> KingRefs:
        info = self.king.get_adm_info()
        periods = info.get("BASFIN", {}).get("AANTPER") or 12
        vat = self.king.read_table("BTW", ["NR", "PERC"])
        grb = self.king.read_table("GRB", ["NR"])
        kpl = self.king.read_table("KPL", ["NR"])
        refs = KingRefs(
            periods=int(periods),
            period_info=info.get("PERIODEINFO", {}),
            vat_codes={int(r.NR): _percentage(r.PERC) for r in vat.itertuples()},
            gl_accounts={int(n) for n in grb["NR"].dropna()},
            cost_centers={int(n) for n in kpl["NR"].dropna()},
        )
        codes = set()
        for row in rows:
            if row.state == "selected" and row.invoice_json:
                code = str(json.loads(row.invoice_json).get("customer_code") or "").strip()
                if code.isdigit():
                    codes.add(int(code))
        refs.debtors = self._existing_debtors(codes)
        return refs

    def _existing_debtors(self, codes: set[int]) -> set[int]:
        if not codes:
            return set()
        if len(codes) > MAX_KEYED_DEBTOR_LOOKUPS:
            frame = self.king.read_table("DEB", ["NR"])
            return {int(n) for n in frame["NR"].dropna()} & codes
        found = set()
        for code in sorted(codes):
            frame = self.king.read_table("DEB", ["NR"], where=[("NR", "=", code)])
            if len(frame):
                found.add(code)
        return found

    def _dry_run(self, report: ExportReport, snapshots: list[dict] | None) -> ExportReport:
        if snapshots is None:
            snapshots = self.select(dry_run=True, report=report)
        open_rows = {row.invoice_id: row for row in self.ledger.rows(("selected",))}
        for snapshot in snapshots:
            open_rows.pop(int(snapshot["InvoiceHeaderId"]), None)
        snapshots = snapshots + [json.loads(r.invoice_json) for r in open_rows.values() if r.invoice_json]
        report.selected += len(snapshots)

        class _Row:  # what king_refs reads of a ledger row
            def __init__(self, snapshot):
                self.state, self.invoice_json = "selected", json.dumps(snapshot, default=_json_default)

        refs = self.king_refs([_Row(s) for s in snapshots]) if snapshots else None
        for snapshot in snapshots:
            number = str(snapshot.get("InvoiceNumber") or snapshot["InvoiceHeaderId"])
            try:
                booking = build_booking(snapshot, journal=self.adm.sales_journal, refs=refs)
            except InvoiceError as exc:
                report.fail(number, exc.reason)
                continue
            log.info("dry run: would book %s: %s", number, booking.to_json())
            report.would_book.append({"invoice": number, "rows": json.loads(booking.to_json())})
        self._log(report)
        return report

    def _log(self, report: ExportReport) -> None:
        log.info(
            "%s invoice export: selected %d, booked %d, already booked %d, marked %d, skipped %d, "
            "pending %d, failed %d%s",
            self.adm.id,
            report.selected,
            report.booked,
            report.already_booked,
            report.marked,
            report.skipped,
            report.pending,
            report.failed,
            " (dry run: nothing posted, ledger unchanged)" if report.dry_run else "",
        )
        for number, reason in sorted(report.waiting.items()):
            log.info("  pending %s: %s", number, reason)
        for number, reason in sorted(report.failures.items()):
            log.warning("  failed %s: %s", number, reason)

    # -- one invoice ----------------------------------------------------------------------------

    def _crash_point(self, state: str) -> None:
        if self.crash_after == state:
            raise SimulatedCrash(f"simulated crash after {state}")

    def _export_one(self, invoice_id: int, refs: KingRefs, report: ExportReport) -> None:
        row = self.ledger.get(invoice_id)
        invoice = json.loads(row.invoice_json) if row.invoice_json else {}
        posts = 0
        while True:
            state = row.state
            if state == "selected":
                posts += self._from_selected(row, invoice, refs, report)
            elif state == "booking_sent":
                posts += self._resolve_sent(row, invoice, report, posts)
            elif state == "booked":
                self._attach(row, invoice)
            elif state == "pdf_attached":
                self._mark(row, report)
            else:  # marked / skipped: done
                return
            row = self.ledger.get(invoice_id)
            if row.state == state:
                raise ProtocolError(f"invoice {row.invoice_number}: state {state} did not advance")

    def _from_selected(self, row, invoice: dict, refs: KingRefs, report: ExportReport) -> int:
        try:
            booking = build_booking(invoice, journal=self.adm.sales_journal, refs=refs)
        except InvoiceError as exc:
            if exc.reason.startswith("nothing to book"):
                self._skip_zero(row, exc.reason, report)
                return 0
            raise
        pdf = self._pdf(row.invoice_id)
        if pdf is None and self.adm.missing_pdf == "wait":
            raise InvoicePending("waiting for the invoice PDF in Qics (missing_pdf: wait)")
        # Look up before the first post: a booking made before the ledger knew (lost state store,
        # booked by hand after go-live) is adopted, never duplicated.
        key = self.king.find_booking(self.adm.sales_journal, booking.year, booking.invoice_number)
        if key:
            self._adopt(row, key, "selected", report)
            return 0
        return self._post(row, booking.rows, pdf, report, from_state="selected")

    def _post(self, row, rows: list[dict], pdf: bytes | None, report: ExportReport, from_state: str) -> int:
        """selected/booking_sent -> booking_sent -> (post) -> pdf_attached | booked."""
        number = row.invoice_number
        ok = self.ledger.move(
            row.invoice_id,
            self.token,
            from_state,
            state="booking_sent",
            booking_json=json.dumps(rows, default=_json_default, sort_keys=True),
            with_pdf=pdf is not None,
            sent_at=utcnow(),
            post_attempts=(row.post_attempts or 0) + 1,
        )
        if not ok:
            raise InvoicePending("the invoice moved under us (another run?); re-checked next run")
        self._crash_point("booking_sent")
        attachment = (pdf_filename(number), pdf, f"Factuur {number}") if pdf is not None else None
        try:
            key = self.king.post_journal_entry(rows, pdf=attachment)
        except RecordValidationError as exc:
            # King said no: nothing was booked. Back to selected, with King's reason.
            self.ledger.move(row.invoice_id, self.token, "booking_sent", state="selected")
            raise InvoiceError(f"King refused the booking: {exc.message}") from None
        except OutcomeUnknownError as exc:
            log.warning("invoice %s: %s; it is looked up before anything is posted again", number, exc)
            self.ledger.set(row.invoice_id, self.token, note=f"outcome unknown: {exc}")
            return 1
        self._booked(row, key, with_pdf=pdf is not None)
        report.booked += 1
        return 1

    def _booked(self, row, key: str, *, with_pdf: bool, found: bool = False) -> None:
        state = "pdf_attached" if with_pdf else "booked"
        ok = self.ledger.move(
            row.invoice_id,
            self.token,
            "booking_sent",
            state=state,
            booking_key=key,
            booked_at=utcnow(),
            found_by_lookup=found,
            note=None,
        )
        if not ok:
            raise ProtocolError(f"invoice {row.invoice_number}: booked as {key} but the ledger row moved")
        log.info(
            "invoice %s booked in King as %s%s", row.invoice_number, key, " with its PDF" if with_pdf else ""
        )
        self._crash_point(state)

    def _adopt(self, row, key: str, from_state: str, report: ExportReport) -> None:
        ok = self.ledger.move(
            row.invoice_id,
            self.token,
            from_state,
            state="booked",
            booking_key=key,
            booked_at=utcnow(),
            found_by_lookup=True,
            note=None,
        )
        if not ok:
            raise ProtocolError(f"invoice {row.invoice_number}: found as {key} but the ledger row moved")
        report.already_booked += 1
        log.info("invoice %s is already booked in King as %s (found by lookup)", row.invoice_number, key)
        self._crash_point("booked")

    def _resolve_sent(self, row, invoice: dict, report: ExportReport, posts_this_run: int) -> int:
        """A booking was sent but its outcome is unknown: look it up before anything else."""
        year = _day(invoice.get("InvoiceDate") or row.invoice_date, "InvoiceDate").year
        key = self.king.find_booking(self.adm.sales_journal, year, row.invoice_number)
        if key:
            if posts_this_run:  # our own post of this run landed; its answer was lost
                self._booked(row, key, with_pdf=bool(row.with_pdf), found=True)
                report.booked += 1
            else:
                # An earlier run's post landed (or someone booked it): its PDF is checked next step.
                self.ledger.move(
                    row.invoice_id,
                    self.token,
                    "booking_sent",
                    state="booked",
                    booking_key=key,
                    booked_at=utcnow(),
                    found_by_lookup=True,
                    note=None,
                )
                report.already_booked += 1
                log.info("invoice %s: the booking sent earlier is in King as %s", row.invoice_number, key)
                self._crash_point("booked")
            return 0
        sent_at = row.sent_at
        if sent_at is not None and sent_at.tzinfo is None:
            from datetime import UTC

            sent_at = sent_at.replace(tzinfo=UTC)
        if sent_at is not None and utcnow() - sent_at < OUTCOME_GRACE:
            raise InvoicePending(
                f"the booking sent at {sent_at:%H:%M:%S} UTC is not (yet) in King; looked up again after "
                f"{int(OUTCOME_GRACE.total_seconds())} s before it is sent again"
            )
        if posts_this_run >= MAX_POSTS_PER_RUN:
            raise InvoicePending("the booking could not be confirmed twice in this run; next run continues")
        rows = rows_from_json(row.booking_json)
        pdf = self._pdf(row.invoice_id) if row.with_pdf else None
        if row.with_pdf and pdf is None:
            if self.adm.missing_pdf == "wait":
                raise InvoicePending("waiting for the invoice PDF in Qics (missing_pdf: wait)")
        log.info("invoice %s: the earlier booking is not in King; sending it again", row.invoice_number)
        return self._post(row, rows, pdf, report, from_state="booking_sent")

    def _attach(self, row, invoice: dict) -> None:
        """booked -> pdf_attached: the PDF is linked unless King already has it (checked first)."""
        filename = pdf_filename(row.invoice_number)
        files = self.king.booking_files(row.booking_key)
        if any(f.get("FILENAME") == filename for f in files) or (files and row.found_by_lookup):
            self.ledger.move(row.invoice_id, self.token, "booked", state="pdf_attached", with_pdf=True)
            self._crash_point("pdf_attached")
            return
        pdf = self._pdf(row.invoice_id)
        if pdf is None:
            if self.adm.missing_pdf == "wait":
                raise InvoicePending("booked; waiting for the invoice PDF in Qics (missing_pdf: wait)")
            self.ledger.move(row.invoice_id, self.token, "booked", state="pdf_attached", with_pdf=False)
            return
        try:
            self.king.attach_pdf(row.booking_key, filename, pdf, f"Factuur {row.invoice_number}")
        except OutcomeUnknownError as exc:
            raise InvoicePending(
                f"attaching the PDF: {exc}; King's files are checked again next run"
            ) from None
        except RecordValidationError as exc:
            raise InvoiceError(f"King refused the PDF: {exc.message}") from None
        self.ledger.move(row.invoice_id, self.token, "booked", state="pdf_attached", with_pdf=True)
        self._crash_point("pdf_attached")

    def _mark(self, row, report: ExportReport) -> None:
        """pdf_attached -> marked: an EntityState (IsError false, DataSourceKey = booking key) in Qics."""
        natural_key = {
            "CompanyId": self.adm.company_id,
            "EntityType": "Invoice",
            "EntityId": int(row.invoice_id),
            "DataSource": self.data_source,
            "DataSourceKey": row.booking_key,
            "IsError": False,
        }
        existing = next(
            iter(self.qics.iter_records("EntityState", filter=odata_filter(natural_key), top=1)), None
        )
        if existing is None:
            message = f"Geboekt in King als {row.booking_key}"
            if not row.with_pdf:
                message += " (zonder pdf)"
            self.qics.create(
                "EntityState",
                {**natural_key, "DataSourceDate": _qics_now(), "Message": message},
                natural_key=natural_key,
            )
        self.ledger.move(
            row.invoice_id,
            self.token,
            "pdf_attached",
            state="marked",
            marked_at=utcnow(),
            last_error=None,
            note=None,
        )
        report.marked += 1

    def _skip_zero(self, row, reason: str, report: ExportReport) -> None:
        self.ledger.move(
            row.invoice_id, self.token, "selected", state="skipped", note=reason, last_error=None
        )
        report.skipped += 1

    def _pdf(self, invoice_id: int) -> bytes | None:
        if invoice_id in self._pdfs:
            return self._pdfs[invoice_id]
        try:
            content = self.qics.invoice_pdf(invoice_id)
        except ProtocolError as exc:
            raise InvoiceError(f"the invoice PDF is unusable: {exc}") from None
        if content is not None:
            problem = check_pdf(content)
            if problem:
                raise InvoiceError(problem)
        self._pdfs[invoice_id] = content
        return content

    def _failed(
        self, invoice_id: int, number: str, reason: str, report: ExportReport, *, tell_qics: bool = True
    ) -> None:
        reason = reason[:MESSAGE_LENGTH]
        row = self.ledger.get(invoice_id)
        self.ledger.failed(invoice_id, self.token, reason, note=None)
        report.fail(number, reason)
        if not tell_qics or (row is not None and row.reported_error == reason):
            return
        try:
            self.qics.post_entity_state(
                entity_id=invoice_id,
                data_source=self.data_source,
                is_error=True,
                message=reason,
                company_id=self.adm.company_id,
            )
            self.ledger.set(invoice_id, self.token, reported_error=reason)
        except KingQicsError as exc:
            log.warning("invoice %s: the error could not be written to Qics (%s)", number, exc)


def _percentage(value: Any) -> Decimal:
    try:
        return (
            Decimal(str(value)) if value is not None and str(value) not in ("", "<NA>", "nan") else Decimal(0)
        )
    except InvalidOperation:
        return Decimal(0)


def _qics_now() -> str:
    return utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")


def ledger_summary(store: StateStore, administration: str) -> dict[str, Any]:
    """The ledger's state per invoice state, plus the invoices failing and waiting now."""
    ledger = InvoiceLedger(store, administration)
    counts: dict[str, int] = {}
    failing, waiting = {}, {}
    for row in ledger.rows():
        counts[row.state] = counts.get(row.state, 0) + 1
        number = row.invoice_number or f"id {row.invoice_id}"
        if row.state in EXPORT_OPEN_STATES:
            if row.last_error:
                failing[number] = row.last_error
            elif row.note:
                waiting[number] = row.note
    return {"states": counts, "failing": failing, "waiting": waiting}
