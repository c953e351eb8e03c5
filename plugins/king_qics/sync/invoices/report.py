"""What an invoice-export run reports (counts, failing and waiting invoices), and the ledger's backlog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from king_qics.state import EXPORT_OPEN_STATES, InvoiceLedger, StateStore


@dataclass
class ExportReport:
    administration: str
    dry_run: bool = False
    selected: int = 0  # invoices new or still open this run
    booked: int = 0  # posted by this run
    already_booked: int = 0  # found in King by look-up (a lost answer, a crash, or booked by hand)
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
