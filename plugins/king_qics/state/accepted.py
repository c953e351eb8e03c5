"""Failures a person accepted as is (the maintenance DAG), kept and shown on the King <-> Qics page.

- A record: off the failing list (its error cleared) and listed here with the failure and the
  note. While it keeps failing with that same reason the sync leaves it off the list and does not
  fail for it; it comes back on the list when it fails for another reason, and its acceptance ends
  when it syncs.
- An invoice: never booked by this program (its ledger row ``selected`` -> ``skipped``, under a
  fenced claim), listed here with the failure and the note. Only an invoice nothing was sent of:
  one that may be booked in King is refused.
"""

from __future__ import annotations

import sqlalchemy as sa

from king_qics.state.ledger import ExportState, InvoiceLedger
from king_qics.state.store import StateStore, _upsert, utcnow
from king_qics.state.tables import accepted, synced_records

INVOICES = "invoices"  # the ``entity`` of an accepted invoice


class NotAcceptable(ValueError):
    """What was named cannot be accepted as is (not failing, or possibly booked)."""


class Acceptances:
    """The accepted failures of one administration."""

    def __init__(self, store: StateStore, administration: str):
        self.store, self.administration = store, administration

    def of(self, entity: str) -> dict[str, sa.Row]:
        """Key -> acceptance, of one entity (or ``INVOICES``)."""
        t = accepted.c
        where = (t.administration == self.administration) & (t.entity == entity)
        with self.store.engine.connect() as conn:
            return {row.key: row for row in conn.execute(sa.select(accepted).where(where))}

    def lift(self, entity: str, key: str) -> None:
        t = accepted.c
        where = (t.administration == self.administration) & (t.entity == entity) & (t.key == key)
        with self.store.transaction() as conn:
            conn.execute(sa.delete(accepted).where(where))

    def accept_record(self, entity: str, key: str, note: str, *, by: str | None, run_id: str | None) -> str:
        """Take a failing record off the failing list; the failure accepted."""
        t = synced_records.c
        where = (t.administration == self.administration) & (t.entity == entity) & (t.king_key == str(key))
        with self.store.transaction() as conn:
            row = conn.execute(sa.select(synced_records).where(where)).first()
            if row is None or row.last_error is None:
                raise NotAcceptable(f"{entity} {key} is not on the failing list")
            self._keep(conn, entity, str(key), row, note, by, run_id)
            conn.execute(sa.update(synced_records).where(where).values(last_error=None))
        return row.last_error

    def accept_invoice(
        self, number: str, note: str, *, token: str, lease, by: str | None, run_id: str | None
    ) -> str:
        """Never book an invoice nothing was sent of to King: ``selected`` -> ``skipped``."""
        ledger = InvoiceLedger(self.store, self.administration)
        rows = [row for row in ledger.rows() if str(row.invoice_number or "").strip() == number]
        if len(rows) != 1:
            raise NotAcceptable(
                f"invoice {number}: {len(rows)} invoices with this number in the export ledger"
            )
        row = rows[0]
        if row.state != ExportState.SELECTED:
            raise NotAcceptable(
                f"invoice {number} is {row.state}: only an invoice nothing was sent of to King can be "
                "accepted as is (one that may be booked stays: check King, retry it with the export's "
                "invoices param)"
            )
        claim = ledger.claim(row.invoice_id, token, lease)
        if claim is None:
            raise NotAcceptable(f"invoice {number} is being exported by another run at the moment")
        try:
            reason = row.last_error or row.note
            words = f"accepted as is: {note}" + (f" (by {by})" if by else "")
            if not ledger.move(claim, ExportState.SELECTED, ExportState.SKIPPED, note=words, last_error=None):
                raise NotAcceptable(f"invoice {number} changed meanwhile; try again")
            with self.store.transaction() as conn:
                self._keep(conn, INVOICES, number, row, note, by, run_id, reason=reason)
        finally:
            ledger.release(claim)
        return reason or "(no failure recorded)"

    def _keep(self, conn, entity, key, row, note, by, run_id, reason: str | None = None) -> None:
        values = {
            "reason": reason if reason is not None else row.last_error,
            "attempts": row.attempts or 0,
            "first_failed_at": row.first_failed_at,
            "note": note,
            "accepted_by": by,
            "accepted_at": utcnow(),
            "run_id": run_id,
        }
        key_values = {"administration": self.administration, "entity": entity, "key": key}
        _upsert(conn, accepted, {**key_values, **values}, values)
