"""The failing and waiting keys and invoices of the state store, as a message lists them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from king_qics.state import EXPORT_OPEN_STATES, StateStore, invoice_exports, synced_records


@dataclass(frozen=True)
class Item:
    what: str  # "customers 10006", "invoice 10004"
    reason: str
    since: datetime | None = None
    attempts: int | None = None


def failing_records(store: StateStore, administration: str, entity: str | None = None) -> list[Item]:
    t = synced_records.c
    where = (t.administration == administration) & t.last_error.is_not(None)
    if entity is not None:
        where = where & (t.entity == entity)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(synced_records).where(where).order_by(t.entity, t.king_key)).all()
    return [
        Item(f"{row.entity} {row.king_key}", row.last_error, row.first_failed_at, row.attempts)
        for row in rows
    ]


def _number(row) -> str:
    return f"invoice {row.invoice_number or row.invoice_id}"


def failing_invoices(store: StateStore, administration: str) -> list[Item]:
    t = invoice_exports.c
    where = (t.administration == administration) & t.last_error.is_not(None) & t.state.in_(EXPORT_OPEN_STATES)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(invoice_exports).where(where).order_by(t.invoice_id)).all()
    return [Item(_number(row), row.last_error, row.first_failed_at, row.attempts) for row in rows]


def waiting_invoices(
    store: StateStore, administration: str, older_than: timedelta, now: datetime
) -> list[Item]:
    """Invoices known to the export for longer than ``older_than`` and not booked yet (open states:
    failing, waiting for a PDF, or not worked on)."""
    t = invoice_exports.c
    where = (
        (t.administration == administration)
        & t.state.in_(EXPORT_OPEN_STATES)
        & (t.state != "booked")
        & (t.state != "pdf_attached")
        & (t.created_at < now - older_than)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(invoice_exports).where(where).order_by(t.invoice_id)).all()
    return [
        Item(_number(row), row.last_error or row.note or f"not booked yet ({row.state})", row.created_at)
        for row in rows
    ]
