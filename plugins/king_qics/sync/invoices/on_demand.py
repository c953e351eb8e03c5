"""The invoice export on demand (the DAG's ``invoices`` param, mixed into InvoiceExport): exactly
the invoices named, now, whatever they wait for, with one rule on top of the export's own: an
invoice that has a booking (booked, PDF attached, marked) is exported again only when King no
longer holds that booking, checked first under the invoice's claim and said so in the log; the
export's look-up by marker and FACT then runs as before every post, so there is never a second
booking. An unknown outcome (booking_sent) keeps its grace: re-posting earlier could book twice.
"""

from __future__ import annotations

import logging

from king_qics.state import ClaimLost, ExportState, utcnow
from king_qics.sync.invoices.report import ExportReport

log = logging.getLogger(__name__)
S = ExportState


class Refused(Exception):
    """Not exported again on demand (King still holds its booking): reported, the ledger untouched."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def invoice_number(row) -> str:
    return str(row.invoice_number or f"id {row.invoice_id}").strip()


def named_rows(ledger, numbers: set[str], report: ExportReport) -> list:
    """The ledger rows of the invoice numbers named; a number the ledger does not have, or an
    invoice skipped for good, is reported (nothing else is looked at)."""
    by_number: dict[str, list] = {}
    for row in ledger.rows():
        by_number.setdefault(invoice_number(row), []).append(row)
    rows = []
    for number in sorted(numbers):
        found = by_number.get(number, [])
        if not found:
            report.fail(
                number,
                "not in the export ledger: the select step never saw it as a processed Qics invoice "
                "dated on or after the go-live cutoff (check its number and its state in Qics)",
            )
        for row in found:
            if row.state == S.SKIPPED:
                report.wait(number, f"skipped, never booked: {row.note or 'nothing to book'}")
            else:
                rows.append(row)
    return rows


class OnDemand:
    """Uses InvoiceExport's king, ledger and adm."""

    def check_king_first(self, claim, row) -> None:
        """Before an invoice that has a booking is worked on demand: does King still hold it?
        Yes: a marked invoice is refused (nothing to do), a booked one goes on with its PDF and
        mark. No: back to selected, to be looked up and booked again (exactly once)."""
        state, number = S(row.state), invoice_number(row)
        if self.king.booking_exists(row.booking_key):
            if state is S.MARKED:
                raise Refused(
                    f"booked in King as {row.booking_key} (checked now) and marked in Qics: not exported "
                    "again. To export it again, remove that booking in King first."
                )
            log.info(
                "invoice %s: King still holds booking %s (checked now); going on with its %s",
                number,
                row.booking_key,
                "PDF" if state is S.BOOKED else "mark in Qics",
            )
            return
        note = (
            f"exported again on demand: King no longer holds booking {row.booking_key} "
            f"(checked {utcnow():%Y-%m-%d %H:%M} UTC)"
        )
        log.warning("invoice %s: %s; it is looked up and booked again", number, note)
        if not self.ledger.reopen(claim, state, note):
            raise ClaimLost(f"invoice {claim.invoice_id}: {state} -> selected refused: no longer ours")
