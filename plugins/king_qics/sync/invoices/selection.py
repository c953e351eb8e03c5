"""What the invoice export reads: the processed Qics invoices since the go-live cutoff (with their
lines and codes, as the snapshot the ledger keeps), and the King reference data a booking is
checked against."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import pendulum

from king_qics.catalog import DAILY_CUTOFF
from king_qics.errors import ProtocolError
from king_qics.hooks.king.schema import parse_date
from king_qics.hooks.qics import ODataFilter, odata_filter
from king_qics.state import EXPORT_DONE_STATES, ExportState, InvoiceLedger, InvoiceWatermark, utcnow
from king_qics.sync.invoices.booking import FiscalPeriod, KingRefs, json_default
from king_qics.sync.invoices.identity import InvoiceError, invoice_day
from king_qics.sync.invoices.report import ExportReport

log = logging.getLogger(__name__)

MAX_KEYED_DEBTOR_LOOKUPS = 50  # more debtors than this: read DEB.NR in full instead
# What the export reads from Qics besides the lines (the preflight checks each in $metadata): the
# invoice header's fields (the customer: the first of INVOICE_CUSTOMER_FIELDS present), and the
# customer's code and name.
INVOICE_FIELDS = (
    "InvoiceHeaderId",
    "InvoiceNumber",
    "InvoiceDate",
    "DueDate",
    "InvoiceHeaderState",
    "InvoiceHeaderType",
    "InvoiceText",
    "CompanyId",
    "IsWrittenOff",
    "TotalAmountExclVat",
    "TotalVatAmount",
    "TotalAmountInclVat",
)
INVOICE_CUSTOMER_FIELDS = ("InvoiceCustomerCompanyId", "CustomerCompanyId")
CUSTOMER_FIELDS = ("CustomerCompanyId", "CustomerCode", "Name")
# Past selected the snapshot is what was sent to King: it is never refreshed.
_SENT_OR_LATER = (ExportState.BOOKING_SENT.value, ExportState.BOOKED.value, ExportState.PDF_ATTACHED.value)
# Between full passes only the processed invoices above the watermark (the highest InvoiceHeaderId
# read) are read, less this many ids: invoices processed at the same moment may show up in Qics out
# of id order. Well under a page (the profile's server_page_size, 100), so an idle run reads one page.
WATERMARK_OVERLAP_IDS = 25
# More invoices waiting in ``selected`` than this are seen again by a full pass, not by id.
MAX_KEYED_RECHECKS = 50


def processed_filter(adm, qics) -> ODataFilter:
    """The $filter of the processed invoices since the go-live cutoff (what the export and the
    preflight send; the processed state, the enum and date literals: the connection's wire profile).
    A day early: an invoice date may be a UTC date-time of the cutoff's Amsterdam day."""
    return qics.processed_filter(adm.company_id, adm.book_invoices_from - timedelta(days=1))


def full_pass_reason(watermark, started, full_refresh: bool) -> str | None:
    """Why this selection reads every processed invoice since the cutoff (None: only those above the
    watermark). The daily full pass finds what the watermark cannot: an invoice processed after a
    newer one had already been read (e.g. a concept from last week processed today)."""
    from king_qics.sync.due import daily_cutoff

    if full_refresh:
        return "full_refresh"
    if watermark is None or watermark.last_full_read_at is None:
        return "first selection"
    if pendulum.instance(watermark.last_full_read_at) < daily_cutoff(started):
        hour, minute = DAILY_CUTOFF
        return f"first run after {hour:02d}:{minute:02d}: the daily full pass"
    return None


def snapshot_json(snapshot: dict) -> str:
    return json.dumps(snapshot, default=json_default, sort_keys=True)


class InvoiceSelection:
    """Reads Qics (and King's reference data) for one administration's export."""

    def __init__(self, administration, qics, ledger: InvoiceLedger):
        self.adm, self.qics, self.ledger = administration, qics, ledger
        self.watermark = InvoiceWatermark(ledger.store, administration.id)

    def select_from_qics(
        self,
        *,
        dry_run: bool,
        report: ExportReport,
        full_refresh: bool = False,
        numbers: set[str] | None = None,
    ) -> list[dict]:
        """Read the processed invoices since the cutoff (between daily full passes: only those above
        the watermark); record new candidates (and written-off ones as skipped) in the ledger.
        Returns the candidate snapshots (with lines and codes). ``numbers``: on demand, only the
        invoices with these numbers are recorded, from a full read, and the watermark stays."""
        cutoff, started = self.adm.book_invoices_from, utcnow()
        mark = self.watermark.get()
        if numbers is not None:
            full_pass = "on demand, the invoices named"
        else:
            full_pass = full_pass_reason(mark, started, full_refresh)
        # the export books a selected invoice only if this read saw it processed: read those again
        waiting = sorted(row.invoice_id for row in self.ledger.rows((ExportState.SELECTED.value,)))
        if full_pass is None and len(waiting) > MAX_KEYED_RECHECKS:
            full_pass = f"{len(waiting)} selected invoices to see again"
        filter_ = processed_filter(self.adm, self.qics)
        read = f"full pass: {full_pass}"
        if full_pass is None and mark.last_invoice_id is not None:
            above = max(int(mark.last_invoice_id) - WATERMARK_OVERLAP_IDS, 0)
            newer = ODataFilter.compare("InvoiceHeaderId", "gt", above)
            filter_ &= newer | ODataFilter.any_of("InvoiceHeaderId", waiting) if waiting else newer
            read = f"InvoiceHeaderId above {above}" + (
                f", and {len(waiting)} selected ones" if waiting else ""
            )
        headers = list(self.qics.iter_records("Invoice", filter=filter_, orderby="InvoiceHeaderId"))
        states = self.ledger.states()
        candidates = []
        for header in headers:
            if numbers is not None and str(header.get("InvoiceNumber") or "").strip() not in numbers:
                continue
            invoice_id = int(header["InvoiceHeaderId"])
            state = states.get(invoice_id)
            if state in EXPORT_DONE_STATES or state in _SENT_OR_LATER:
                continue  # done, or past the point where the snapshot may change
            try:
                day = invoice_day(header.get("InvoiceDate"))
            except InvoiceError:
                day = None  # reported by the export (build_booking)
            if day is not None and day < cutoff:  # the invoice's own day in Amsterdam decides
                continue
            if header.get("IsWrittenOff"):
                report.skipped += 1
                if not dry_run:
                    self.ledger.record_skipped(
                        invoice_id, header.get("InvoiceNumber"), day, "fully written off"
                    )
                continue
            candidates.append((header, day))
        snapshots = self._snapshots([header for header, _ in candidates])
        if not dry_run:
            for snapshot, (_, day) in zip(snapshots, candidates, strict=True):
                self.ledger.record_candidate(
                    snapshot["InvoiceHeaderId"], snapshot.get("InvoiceNumber"), day, snapshot_json(snapshot)
                )
        if not dry_run and numbers is None:  # an on-demand run recorded only the invoices named
            last = max((int(h["InvoiceHeaderId"]) for h in headers), default=None)
            self.watermark.advance(last, started, full_read=full_pass is not None)
        log.info(
            "%s invoice export: %d processed invoices since %s (%s), %d candidates, %d skipped%s",
            self.adm.id,
            len(headers),
            cutoff,
            read,
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
        # the lines from the profile's invoice-line set, their fields named as booking.py reads them
        for invoice_id, lines in self.qics.invoice_lines(by_id).items():
            by_id[invoice_id]["lines"] = lines
        customers = {
            int(c["CustomerCompanyId"]): c
            for c in self.qics.iter_records(
                "CustomerCompany",
                filter=odata_filter({"CompanyId": self.adm.company_id}),
                select=list(CUSTOMER_FIELDS),
            )
        }
        vat_codes = {int(v["VatCodeId"]): v for v in self.qics.iter_records("VatCode")}
        cost_centers: dict[int, dict] = {}
        if any(line.get("CostCenterId") for inv in by_id.values() for line in inv["lines"]):
            cost_centers = {int(c["CostCenterId"]): c for c in self.qics.iter_records("CostCenter")}
        for invoice in by_id.values():
            customer_id = next((invoice[f] for f in INVOICE_CUSTOMER_FIELDS if invoice.get(f)), None)
            customer = customers.get(int(customer_id)) if customer_id is not None else None
            invoice["customer_code"] = customer.get("CustomerCode") if customer else None
            invoice["customer_name"] = customer.get("Name") if customer else None
            for line in invoice["lines"]:
                vat = vat_codes.get(int(line["VatCodeId"])) if line.get("VatCodeId") is not None else None
                line["vat_code"] = vat.get("Code") if vat else None
                center = cost_centers.get(int(line["CostCenterId"])) if line.get("CostCenterId") else None
                line["cost_center_code"] = center.get("Code") if center else None
        return list(by_id.values())


def king_refs(king, snapshots: Iterable[dict]) -> KingRefs:
    """BASFIN/PERIODEINFO, the period dates, the VAT codes, GL accounts and cost centers, and which
    of the debtors the ``snapshots`` need exist in King."""
    info = king.get_adm_info()
    periods = info.get("BASFIN", {}).get("AANTPER") or 12
    vat = king.read_table("BTW", ["NR", "PERC"])
    grb = king.read_table("GRB", ["NR"])
    kpl = king.read_table("KPL", ["NR"])
    refs = KingRefs(
        periods=int(periods),
        period_info=info.get("PERIODEINFO", {}),
        vat_codes={int(r.NR): _percentage(r.PERC) for r in vat.itertuples()},
        gl_accounts={int(n) for n in grb["NR"].dropna()},
        cost_centers={int(n) for n in kpl["NR"].dropna()},
    )
    codes = set()
    for snapshot in snapshots:
        code = str(snapshot.get("customer_code") or "").strip()
        if code.isdigit():
            codes.add(int(code))
    refs.debtors = _existing_debtors(king, codes)
    refs.period_dates = period_dates(king)
    return refs


def period_dates(king) -> list[FiscalPeriod]:
    """King's fiscal periods with their dates (the King profile names the GetAdmInfo table and its
    fields); [] when the profile names none or King does not know the table (then the calendar
    decides, and the log says so)."""
    profile = king.profile
    if not profile.period_dates_table:
        return []
    year, period, start, end = profile.period_dates_fields
    try:
        rows = king.get_adm_rows({profile.period_dates_table: profile.period_dates_fields})
    except ProtocolError as exc:
        log.warning("King gives no period dates (%s); fiscal periods follow the calendar", exc)
        return []
    out = []
    for row in rows.get(profile.period_dates_table, []):
        try:
            out.append(
                FiscalPeriod(
                    int(row[year]), int(row[period]), parse_date(str(row[start])), parse_date(str(row[end]))
                )
            )
        except (KeyError, TypeError, ValueError):
            raise ProtocolError(
                f"King {profile.period_dates_table}: a period without {profile.period_dates_fields}: {row}"
            ) from None
    return sorted(out, key=lambda p: (p.start, p.period))


def _existing_debtors(king, codes: set[int]) -> set[int]:
    if not codes:
        return set()
    if len(codes) > MAX_KEYED_DEBTOR_LOOKUPS:
        frame = king.read_table("DEB", ["NR"])
        return {int(n) for n in frame["NR"].dropna()} & codes
    found = set()
    for code in sorted(codes):
        frame = king.read_table("DEB", ["NR"], where=[("NR", "=", code)])
        if len(frame):
            found.add(code)
    return found


def _percentage(value: Any) -> Decimal:
    try:
        return (
            Decimal(str(value)) if value is not None and str(value) not in ("", "<NA>", "nan") else Decimal(0)
        )
    except InvalidOperation:
        return Decimal(0)
