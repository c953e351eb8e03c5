"""The invoice export ledger (table invoice_exports): the states and the only moves between them,
claims as fencing tokens, and every change as one conditional update (docs/invoice_export.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache

import sqlalchemy as sa

from king_qics.state.store import StateStore, _insert, utcnow
from king_qics.state.tables import invoice_exports


class ExportState(StrEnum):
    """The recovery point of one invoice's export (docs/invoice_export.md)."""

    SELECTED = "selected"  # known, not (yet) sent to King
    BOOKING_SENT = "booking_sent"  # CreateJournaalpost may have been sent: outcome to be settled
    BOOKED = "booked"  # King has the booking; its PDF not yet confirmed
    PDF_ATTACHED = "pdf_attached"  # booked with its PDF (or without one, book_without)
    MARKED = "marked"  # done: marked exported in Qics
    SKIPPED = "skipped"  # done: never gets a booking (written off, nets to zero)


# The only moves the ledger makes (from -> to); anything else is a bug and refused.
TRANSITIONS: dict[ExportState, frozenset[ExportState]] = {
    ExportState.SELECTED: frozenset({ExportState.BOOKING_SENT, ExportState.BOOKED, ExportState.SKIPPED}),
    # to selected: King refused the booking (nothing booked); to booking_sent: sent again
    ExportState.BOOKING_SENT: frozenset(
        {ExportState.BOOKING_SENT, ExportState.BOOKED, ExportState.PDF_ATTACHED, ExportState.SELECTED}
    ),
    ExportState.BOOKED: frozenset({ExportState.PDF_ATTACHED}),
    ExportState.PDF_ATTACHED: frozenset({ExportState.MARKED}),
}
EXPORT_OPEN_STATES = tuple(state.value for state in TRANSITIONS)
EXPORT_DONE_STATES = (ExportState.MARKED.value, ExportState.SKIPPED.value)
# On demand only (the export's ``invoices`` param): an invoice King holds no booking of any more
# (checked first, under a claim) goes back to selected and is exported again; never from
# booking_sent (its outcome is unknown: that is the look-up's to settle).
REEXPORT_FROM = frozenset({ExportState.BOOKED, ExportState.PDF_ATTACHED, ExportState.MARKED})
ON_DEMAND_STATES = (*EXPORT_OPEN_STATES, ExportState.MARKED.value)
# what a re-export forgets of the booking King no longer has
_FORGOTTEN_BOOKING = {
    "booking_key": None,
    "king_fact": None,
    "booked_at": None,
    "marked_at": None,
    "found_by_lookup": False,
    "with_pdf": None,
    "sent_at": None,
    "last_error": None,
    "reported_error": None,
}


class ClaimLost(Exception):
    """Another run took this invoice over (our claim's lease ran out): we may not touch it."""


@dataclass(frozen=True)
class Claim:
    """A run's hold on one invoice; every later change must carry it (a fencing token)."""

    invoice_id: int
    token: str
    epoch: int
    lease: timedelta  # how long the claim holds after each renewal

    def renewed(self, now: datetime) -> dict:
        return {"claimed_at": now, "lease_until": now + self.lease, "updated_at": now}


# A claim written before leases were stored (no lease_until) holds at most this long.
LEGACY_CLAIM_LEASE = timedelta(hours=2)


@cache
def _ledger_row():
    """One ledger row by key, built once: the export reads it after every step of every invoice."""
    return sa.select(invoice_exports).where(_ledger_key())


def _ledger_key():
    """One ledger row; the bind names must differ from column names in an UPDATE."""
    t = invoice_exports.c
    return (t.administration == sa.bindparam("key_administration")) & (
        t.invoice_id == sa.bindparam("key_invoice_id")
    )


@cache
def _ledger_claim(states: tuple[str, ...] = EXPORT_OPEN_STATES):
    """InvoiceLedger.claim's conditional update, built once (once per invoice of every run)."""
    t = invoice_exports.c
    legacy = t.lease_until.is_(None) & (t.claimed_at < sa.bindparam("legacy_stale"))
    # free, or its holder's lease ran out, or held under our own token (a retry of the same run:
    # the earlier try is dead or, if not, fenced out by the new epoch)
    takeable = (
        t.owner.is_(None)
        | (t.owner == sa.bindparam("token"))
        | (t.lease_until < sa.bindparam("now"))
        | legacy
    )
    return (
        sa.update(invoice_exports)
        .where(_ledger_key() & t.state.in_(states) & takeable)
        .values(
            owner=sa.bindparam("token"),
            epoch=sa.func.coalesce(t.epoch, 0) + 1,
            claimed_at=sa.bindparam("now"),
            lease_until=sa.bindparam("until"),
            updated_at=sa.bindparam("now"),
        )
    )


def _held(t):
    """The row is still held by the claim given as key_owner/key_epoch."""
    return (t.owner == sa.bindparam("key_owner")) & (t.epoch == sa.bindparam("key_epoch"))


@cache
def _ledger_release():
    t = invoice_exports.c
    return (
        sa.update(invoice_exports)
        .where(_ledger_key() & _held(t))
        .values(owner=None, claimed_at=None, lease_until=None, updated_at=sa.bindparam("now"))
    )


@cache
def _ledger_move(expected: tuple[str, ...], columns: tuple[str, ...]):
    """InvoiceLedger.move's conditional update, built once per shape (several moves per invoice)."""
    t = invoice_exports.c
    return (
        sa.update(invoice_exports)
        .where(_ledger_key() & _held(t) & t.state.in_(expected))
        .values({name: sa.bindparam(f"new_{name}") for name in columns})
    )


class InvoiceLedger:
    """The export ledger of one administration: the exactly-once bookkeeping of invoice exports.

    Every method is its own short transaction. Claims and state moves are conditional updates
    (``... WHERE owner = :token AND state = :expected``), so two runs can never both move one
    invoice; a method returns False when the row was not in the expected state or not ours.
    """

    def __init__(self, store: StateStore, administration: str):
        self.store, self.administration = store, administration

    def _key(self, invoice_id: int):
        t = invoice_exports.c
        return (t.administration == self.administration) & (t.invoice_id == int(invoice_id))

    def _key_params(self, invoice_id: int) -> dict:
        return {"key_administration": self.administration, "key_invoice_id": int(invoice_id)}

    def get(self, invoice_id: int) -> sa.Row | None:
        with self.store.engine.connect() as conn:
            return conn.execute(_ledger_row(), self._key_params(invoice_id)).first()

    def rows(self, states: tuple[str, ...] | None = None) -> list[sa.Row]:
        t = invoice_exports.c
        where = t.administration == self.administration
        if states:
            where = where & t.state.in_(states)
        with self.store.engine.connect() as conn:
            return conn.execute(sa.select(invoice_exports).where(where).order_by(t.invoice_id)).all()

    def states(self) -> dict[int, str]:
        t = invoice_exports.c
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.invoice_id, t.state).where(t.administration == self.administration)
            ).all()
        return {int(row.invoice_id): row.state for row in rows}

    def record_candidate(self, invoice_id: int, number: str | None, day, invoice_json: str) -> None:
        """Record a candidate invoice (new row in ``selected``); refresh the snapshot of a row that
        was not yet sent to King. Rows past ``selected`` are never touched here."""
        refresh = {"invoice_json": invoice_json, "invoice_number": number, "invoice_date": day}
        fields = {"state": ExportState.SELECTED.value, "invoice_json": invoice_json}
        self._add_row(invoice_id, number, day, fields, refresh)

    def record_skipped(self, invoice_id: int, number: str | None, day, reason: str) -> None:
        """Record an invoice that never gets a booking (e.g. fully written off)."""
        skipped = ExportState.SKIPPED.value
        change = {"state": skipped, "note": reason, "last_error": None, "updated_at": utcnow()}
        self._add_row(invoice_id, number, day, {"state": skipped, "note": reason}, change)

    def _add_row(self, invoice_id: int, number: str | None, day, fields: dict, on_selected: dict) -> None:
        """Insert a ledger row; if it exists and is still ``selected``, apply ``on_selected`` to it
        instead (a row past ``selected`` is never touched: nothing is ever un-booked)."""
        now = utcnow()
        t = invoice_exports
        values = {
            "administration": self.administration,
            "invoice_id": int(invoice_id),
            "invoice_number": number,
            "invoice_date": day,
            "found_by_lookup": False,
            "post_attempts": 0,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
            **fields,
        }
        with self.store.transaction() as conn:
            statement = _insert(conn, t).values(**values)
            statement = statement.on_conflict_do_update(
                index_elements=[t.c.administration, t.c.invoice_id],
                set_=on_selected,
                where=t.c.state == ExportState.SELECTED.value,
            )
            conn.execute(statement)

    def claim(
        self, invoice_id: int, token: str, lease: timedelta, states: tuple[str, ...] = EXPORT_OPEN_STATES
    ) -> Claim | None:
        """Take an open invoice for this run (atomic), or None when another run holds it. A claim
        holds for its holder's ``lease`` after each change (the holder knows its own worst case);
        a claim left by a run that died or froze is taken over once that has passed. Each claim
        gets the next epoch, so a holder whose lease ran out can change nothing."""
        now = utcnow()
        params = {
            **self._key_params(invoice_id),
            "token": token,
            "now": now,
            "until": now + lease,
            "legacy_stale": now - LEGACY_CLAIM_LEASE,
        }
        t = invoice_exports.c
        with self.store.transaction() as conn:
            if conn.execute(_ledger_claim(states), params).rowcount != 1:
                return None
            epoch = conn.execute(sa.select(t.epoch).where(self._key(invoice_id))).scalar_one()
        return Claim(int(invoice_id), token, int(epoch), lease)

    def release(self, claim: Claim) -> None:
        params = {**self._claim_params(claim), "now": utcnow()}
        with self.store.transaction() as conn:
            conn.execute(_ledger_release(), params)

    def _claim_params(self, claim: Claim) -> dict:
        return {**self._key_params(claim.invoice_id), "key_owner": claim.token, "key_epoch": claim.epoch}

    def move(self, claim: Claim, expected: ExportState, to: ExportState, **values) -> bool:
        """Move an invoice we hold from ``expected`` to ``to`` (a declared transition; conditional
        update, False when the row was not in ``expected`` or is no longer ours)."""
        if to not in TRANSITIONS.get(expected, ()):
            raise ValueError(f"the export ledger never moves {expected} -> {to}")
        values = {"state": to.value, **claim.renewed(utcnow()), **values}
        params = {f"new_{name}": value for name, value in values.items()}
        params.update(self._claim_params(claim))
        with self.store.transaction() as conn:
            result = conn.execute(_ledger_move((expected.value,), tuple(values)), params)
        return result.rowcount == 1

    def reopen(self, claim: Claim, expected: ExportState, note: str) -> bool:
        """On demand, after King was checked and holds no booking of it any more: a booked invoice
        we hold goes back to ``selected`` (its booking forgotten), to be exported again."""
        if expected not in REEXPORT_FROM:
            raise ValueError(f"the export ledger never exports an invoice in {expected} again")
        values = {"state": ExportState.SELECTED.value, **claim.renewed(utcnow()), **_FORGOTTEN_BOOKING}
        values["note"] = note
        params = {f"new_{name}": value for name, value in values.items()}
        params.update(self._claim_params(claim))
        with self.store.transaction() as conn:
            result = conn.execute(_ledger_move((expected.value,), tuple(values)), params)
        return result.rowcount == 1

    def stamp_attempt(self, claim: Claim) -> None:
        """Right before a booking attempt goes on the wire: record when (the outcome-unknown window
        starts here) and renew the claim, or raise ClaimLost if the claim is no longer ours."""
        now = utcnow()
        if not self._update(claim, sent_at=now, **claim.renewed(now)):
            raise ClaimLost(f"invoice {claim.invoice_id}: claim (epoch {claim.epoch}) taken over")

    def renew(self, claim: Claim) -> bool:
        """Renew the claim before a step that writes elsewhere; False when it is no longer ours."""
        return self._update(claim, **claim.renewed(utcnow()))

    def failed(self, claim: Claim, reason: str, **values) -> None:
        """Record the current error of an invoice we hold (its state stays: the recovery point)."""
        now = utcnow()
        t = invoice_exports.c
        self._update(
            claim,
            last_error=reason,
            attempts=t.attempts + 1,
            first_failed_at=sa.func.coalesce(t.first_failed_at, now),
            last_failed_at=now,
            updated_at=now,
            **values,
        )

    def set(self, claim: Claim, **values) -> None:
        """Update bookkeeping columns (not the state) of an invoice we hold."""
        self._update(claim, updated_at=utcnow(), **values)

    def _update(self, claim: Claim, **values) -> bool:
        t = invoice_exports.c
        held = (t.owner == claim.token) & (t.epoch == claim.epoch)
        with self.store.transaction() as conn:
            result = conn.execute(
                sa.update(invoice_exports).where(self._key(claim.invoice_id) & held).values(**values)
            )
        return result.rowcount == 1
