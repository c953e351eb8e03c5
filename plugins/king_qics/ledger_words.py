"""The invoice export ledger's states (king_qics.state, ``invoice_exports.state``) in a bookkeeper's
words: the one place that says what a state means to the person reading the King <-> Qics page or
an invoice export log. Import-light (no Airflow, no database)."""

from __future__ import annotations

# In the order an invoice goes through them (selected -> ... -> marked), then the way out.
LEDGER_STATE_WORDS = {
    "selected": "waiting to be booked",
    "booking_sent": "booking sent, confirming",
    "booked": "booked, attaching PDF",
    "pdf_attached": "booked, marking in Qics",
    "marked": "booked and marked",
    "skipped": "skipped",
}


def ledger_state_words(state: str | None) -> str:
    """A ledger state as a bookkeeper reads it (an unknown state as it is)."""
    if state is None:
        return ""
    return LEDGER_STATE_WORDS.get(state, state)
