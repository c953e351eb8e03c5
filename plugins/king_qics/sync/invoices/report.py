"""What an invoice-export run reports (counts, failing and waiting invoices), and the ledger's backlog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from king_qics.ledger_words import LEDGER_STATE_WORDS, ledger_state_words
from king_qics.state import EXPORT_OPEN_STATES, InvoiceLedger, StateStore


@dataclass
class ExportReport:
    administration: str
    dry_run: bool = False
    worked_on: int = 0  # invoices this run worked on: new ones and those still open
    booked: int = 0  # posted by this run
    already_booked: int = 0  # found in King by look-up (a lost answer, a crash, or booked by hand)
    marked: int = 0  # marked exported in Qics by this run
    skipped: int = 0  # fully written off, or nothing to book (every line nets to zero)
    pending: int = 0  # waiting (PDF, unknown outcome settling, claimed by another run)
    failed: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)
    would_book: list[dict] = field(default_factory=list)  # dry run: the bookings it would post

    def counts(self) -> dict[str, Any]:
        return {
            "worked_on": self.worked_on,
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

    def sentence(self) -> str:
        return run_sentence(self.counts())


def run_sentence(counts: dict[str, Any]) -> str:
    """A run's counts as one sentence: "worked on 3 invoices: booked 2, ..."."""
    parts = [
        f"booked {counts['booked']}",
        f"found booked in King already {counts['already_booked']}",
        f"marked exported in Qics {counts['marked']}",
        f"waiting {counts['pending']}",
        f"failed {counts['failed']}",
    ]
    worked_on = counts["worked_on"]
    text = f"worked on {worked_on} invoice{'' if worked_on == 1 else 's'}: {', '.join(parts)}"
    text += f"; skipped {counts['skipped']} (fully written off, or nothing to book)"
    return text + (" (dry run: nothing posted, ledger unchanged)" if counts.get("dry_run") else "")


def ledger_sentence(states: dict[str, int]) -> str:
    """The ledger's invoices per state in a bookkeeper's words, in the order invoices go through them."""
    order = [*LEDGER_STATE_WORDS, *sorted(set(states) - set(LEDGER_STATE_WORDS))]
    parts = [f"{states[state]} {ledger_state_words(state)}" for state in order if states.get(state)]
    return ", ".join(parts) if parts else "no invoices yet"


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
