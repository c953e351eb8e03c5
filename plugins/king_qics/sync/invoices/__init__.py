"""Invoice export Qics -> King for one administration: select -> build -> look up -> post -> mark.

Each processed QicsMilestones invoice dated on/after the administration's ``book_invoices_from``
becomes exactly one sales booking in King, with the invoice PDF attached, and is then marked
exported in Qics with an EntityState carrying King's booking key. Rooms:

- ``booking``: the booking of one invoice (amounts, rows, rounding, the keys we send); pure;
- ``adoption``: whether a booking King already holds is this invoice's (the adoption rule); pure;
- ``selection``: reading the Qics invoices and King's reference data;
- ``export``: the ledger state machine (``king_qics.state.InvoiceLedger``) that makes it exactly once;
- ``report``: the run's counts and the ledger's backlog.

See docs/invoice_export.md for the states, the rules and what is assumed.
"""

from king_qics.sync.invoices.booking import Booking, KingRefs, NothingToBook, build_booking, vat_per_code
from king_qics.sync.invoices.export import DATA_SOURCE, InvoiceExport, InvoicePending
from king_qics.sync.invoices.identity import (
    InvoiceError,
    booking_marker,
    check_pdf,
    invoice_day,
    invoice_fact,
    pdf_filename,
)
from king_qics.sync.invoices.lease import claim_lease
from king_qics.sync.invoices.report import ExportReport, ledger_sentence, ledger_summary, run_sentence

__all__ = [
    "DATA_SOURCE",
    "Booking",
    "ExportReport",
    "InvoiceError",
    "InvoiceExport",
    "InvoicePending",
    "KingRefs",
    "NothingToBook",
    "booking_marker",
    "build_booking",
    "check_pdf",
    "claim_lease",
    "invoice_day",
    "invoice_fact",
    "ledger_sentence",
    "ledger_summary",
    "pdf_filename",
    "run_sentence",
    "vat_per_code",
]
