"""The export's steps after the booking (mixed into InvoiceExport): ``booked -> pdf_attached`` (the
invoice PDF linked to the booking, unless King has it already), ``pdf_attached -> marked`` (an
EntityState in Qics carrying the booking key, unless it is there already), and a failure told to
Qics as an error EntityState. Each step checks before it writes, so a repeat after a crash or a
lost answer does nothing twice."""

from __future__ import annotations

import logging

from king_qics.errors import KingQicsError, OutcomeUnknownError, ProtocolError, RecordValidationError
from king_qics.hooks.qics import odata_filter
from king_qics.state import Claim, ExportState, utcnow
from king_qics.sync.invoices.identity import InvoiceError, check_pdf, invoice_fact, pdf_filename
from king_qics.sync.invoices.report import ExportReport

log = logging.getLogger(__name__)

MESSAGE_LENGTH = 1000  # of an error EntityState's Message
S = ExportState


class InvoicePending(Exception):
    """This invoice waits for something (its PDF, an unknown outcome to settle); not an error."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class AfterBooking:
    """Uses InvoiceExport's king, qics, ledger, adm, data_source, _move, _renew and _pdfs."""

    def _attach(self, claim: Claim, row) -> None:
        """booked -> pdf_attached: the PDF is linked unless King already has it (checked first)."""
        fact = fact_or_id(row)
        filename = pdf_filename(fact)
        files = self.king.booking_files(row.booking_key)
        if any(f.get("FILENAME") == filename for f in files) or (files and row.found_by_lookup):
            self._move(claim, S.BOOKED, S.PDF_ATTACHED, with_pdf=True)
            return
        pdf = self._pdf(row.invoice_id)
        if pdf is None:
            if self.adm.missing_pdf == "wait":
                raise InvoicePending("booked; waiting for the invoice PDF in Qics (missing_pdf: wait)")
            self._move(claim, S.BOOKED, S.PDF_ATTACHED, with_pdf=False)
            return
        try:
            self.king.attach_pdf(
                row.booking_key, filename, pdf, f"Factuur {fact}", before_attempt=lambda: self._renew(claim)
            )
        except OutcomeUnknownError as exc:
            raise InvoicePending(
                f"attaching the PDF: {exc}; King's files are checked again next run"
            ) from None
        except RecordValidationError as exc:
            raise InvoiceError(f"King refused the PDF: {exc.message}") from None
        self._move(claim, S.BOOKED, S.PDF_ATTACHED, with_pdf=True)

    def _mark(self, claim: Claim, row, report: ExportReport) -> None:
        """pdf_attached -> marked: an EntityState (IsError false, DataSourceKey = booking key) in Qics."""
        natural_key = {
            "CompanyId": self.adm.company_id,
            "EntityType": self.qics.profile.invoice_entity_type,
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
            if row.king_fact and row.king_fact != fact_or_id(row):
                message += f", factuurnummer in King {row.king_fact}"
            if not row.with_pdf:
                message += " (zonder pdf)"
            self._renew(claim)
            self.qics.create(
                "EntityState",
                {**natural_key, "DataSourceDate": _qics_now(), "Message": message},
                natural_key=natural_key,
            )
        self._move(claim, S.PDF_ATTACHED, S.MARKED, marked_at=utcnow(), last_error=None, note=None)
        report.marked += 1

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

    def _failed(self, claim: Claim, number: str, reason: str, report, *, tell_qics: bool = True) -> None:
        reason = reason[:MESSAGE_LENGTH]
        row = self.ledger.get(claim.invoice_id)
        self.ledger.failed(claim, reason, note=None)
        report.fail(number, reason)
        if not tell_qics or (row is not None and row.reported_error == reason):
            return
        try:
            self.qics.post_entity_state(
                entity_id=claim.invoice_id,
                data_source=self.data_source,
                is_error=True,
                message=reason,
                company_id=self.adm.company_id,
            )
            self.ledger.set(claim, reported_error=reason)
        except KingQicsError as exc:
            log.warning("invoice %s: the error could not be written to Qics (%s)", number, exc)


def fact_or_id(row) -> str:
    try:
        return invoice_fact(row.invoice_number)
    except InvoiceError:
        return f"invoice-{row.invoice_id}"


def _qics_now() -> str:
    return utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
