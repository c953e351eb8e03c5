"""What keeps idle runs cheap: the invoice selection's watermark (up to which InvoiceHeaderId the
processed Qics invoices were read) and the master-data gate's fingerprints of King's changed rows."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from king_qics.state.store import StateStore, _upsert, utcnow
from king_qics.state.tables import invoice_watermarks, king_change_checks


class InvoiceWatermark:
    """Per administration: the highest InvoiceHeaderId of the processed invoices read so far, and
    when the selection last read every processed invoice since the cutoff."""

    def __init__(self, store: StateStore, administration: str):
        self.store, self.administration = store, administration

    def get(self) -> sa.Row | None:
        t = invoice_watermarks.c
        with self.store.engine.connect() as conn:
            return conn.execute(
                sa.select(invoice_watermarks).where(t.administration == self.administration)
            ).first()

    def advance(self, last_invoice_id: int | None, read_at: datetime, full_read: bool) -> None:
        """Never backwards: a read that found nothing above the watermark keeps it."""
        t = invoice_watermarks.c
        values: dict = {"read_at": read_at}
        if last_invoice_id is not None:
            values["last_invoice_id"] = sa.case(
                (t.last_invoice_id > last_invoice_id, t.last_invoice_id), else_=last_invoice_id
            )
        if full_read:
            values["last_full_read_at"] = read_at
        first = {
            "administration": self.administration,
            "read_at": read_at,
            "last_invoice_id": last_invoice_id,
            "last_full_read_at": read_at if full_read else None,
        }
        with self.store.transaction() as conn:
            _upsert(conn, invoice_watermarks, first, values)


class KingChangeChecks:
    """Per administration and King table: the fingerprint of the rows King returned as changed since
    a day, stored by the entity task that synced them; the gate compares the rows it reads with it."""

    def __init__(self, store: StateStore, administration: str):
        self.store, self.administration = store, administration

    def all(self) -> dict[str, sa.Row]:
        t = king_change_checks.c
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(king_change_checks).where(t.administration == self.administration)
            ).all()
        return {row.king_table: row for row in rows}

    def synced(self, king_table: str, since_day: date, fingerprint: str) -> None:
        values = {"since_day": since_day, "fingerprint": fingerprint, "synced_at": utcnow()}
        key = {"administration": self.administration, "king_table": king_table}
        with self.store.transaction() as conn:
            _upsert(conn, king_change_checks, {**key, **values}, values)
