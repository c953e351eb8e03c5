"""What the alerts keep (tables alert_conditions and flow_heartbeats): which conditions hold now
and were told, and when each flow last ran through. Each change is one atomic statement, so two
processes that see the same condition tell it once."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from king_qics.state.store import StateStore, _insert_ignore, _upsert, utcnow
from king_qics.state.tables import alert_conditions, flow_heartbeats


class AlertState:
    """The alert conditions of one administration."""

    def __init__(self, store: StateStore, administration: str):
        self.store, self.administration = store, administration

    def _key(self, condition: str):
        t = alert_conditions.c
        return (t.administration == self.administration) & (t.condition == condition)

    def open(self, condition: str, summary: str, now: datetime | None = None) -> bool:
        """Mark ``condition`` as holding; True only for the caller that opened it (it tells it)."""
        now = now or utcnow()
        values = {"opened_at": now, "summary": summary, "notified_at": now, "resolved_at": None}
        t = alert_conditions.c
        with self.store.transaction() as conn:
            key = {"administration": self.administration, "condition": condition}
            inserted = conn.execute(_insert_ignore(conn, alert_conditions, {**key, **values})).rowcount
            if inserted == 1:
                return True
            reopened = conn.execute(
                sa.update(alert_conditions)
                .where(self._key(condition) & t.opened_at.is_(None))
                .values(**values)
            ).rowcount
        return reopened == 1

    def undo_open(self, condition: str, opened_at: datetime) -> None:
        """The message of a condition just opened could not be sent: open it again next time."""
        t = alert_conditions.c
        with self.store.transaction() as conn:
            conn.execute(
                sa.update(alert_conditions)
                .where(self._key(condition) & (t.opened_at == opened_at))
                .values(opened_at=None, summary=None)
            )

    def tell(self, condition: str, summary: str, now: datetime | None = None) -> bool:
        """For an event told again only when it changed (a task failing with the same records as it
        last told): True when ``condition`` is not open, or open with another ``summary``."""
        now = now or utcnow()
        t = alert_conditions.c
        values = {"opened_at": now, "summary": summary, "notified_at": now, "resolved_at": None}
        key = {"administration": self.administration, "condition": condition}
        with self.store.transaction() as conn:
            if conn.execute(_insert_ignore(conn, alert_conditions, {**key, **values})).rowcount == 1:
                return True
            changed = t.opened_at.is_(None) | t.summary.is_(None) | (t.summary != summary)
            return (
                conn.execute(
                    sa.update(alert_conditions).where(self._key(condition) & changed).values(**values)
                ).rowcount
                == 1
            )

    def clear(self, condition: str, now: datetime | None = None) -> None:
        """End ``condition`` without a message (a task that failed ran through again)."""
        t = alert_conditions.c
        with self.store.transaction() as conn:
            conn.execute(
                sa.update(alert_conditions)
                .where(self._key(condition) & t.opened_at.is_not(None))
                .values(opened_at=None, resolved_at=now or utcnow())
            )

    def resolve(self, condition: str, now: datetime | None = None) -> sa.Row | None:
        """Mark ``condition`` as cleared; its row as it was while open, only for the caller that
        closed it (it tells "resolved"), else None."""
        now = now or utcnow()
        t = alert_conditions.c
        with self.store.transaction() as conn:
            row = conn.execute(
                sa.select(alert_conditions).where(self._key(condition) & t.opened_at.is_not(None))
            ).first()
            if row is None:
                return None
            closed = conn.execute(
                sa.update(alert_conditions)
                .where(self._key(condition) & (t.opened_at == row.opened_at))
                .values(opened_at=None, resolved_at=now, notified_at=now)
            ).rowcount
        return row if closed == 1 else None

    def holding(self) -> dict[str, sa.Row]:
        """The conditions open now, by name."""
        t = alert_conditions.c
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(alert_conditions).where(
                    (t.administration == self.administration) & t.opened_at.is_not(None)
                )
            ).all()
        return {row.condition: row for row in rows}

    def last_notified(self, condition: str) -> datetime | None:
        with self.store.engine.connect() as conn:
            return conn.execute(
                sa.select(alert_conditions.c.notified_at).where(self._key(condition))
            ).scalar()

    def claim_once(self, condition: str, since: datetime, now: datetime | None = None) -> bool:
        """For a message sent at most once per period (the daily digest): True for the one caller
        that records it as sent at ``now``, when it was last sent before ``since`` (or never)."""
        now = now or utcnow()
        t = alert_conditions.c
        key = {"administration": self.administration, "condition": condition}
        with self.store.transaction() as conn:
            if conn.execute(_insert_ignore(conn, alert_conditions, {**key, "notified_at": now})).rowcount:
                return True
            return (
                conn.execute(
                    sa.update(alert_conditions)
                    .where(self._key(condition) & (t.notified_at.is_(None) | (t.notified_at < since)))
                    .values(notified_at=now)
                ).rowcount
                == 1
            )

    def undo_claim(self, condition: str, at: datetime) -> None:
        """The once-a-period message claimed at ``at`` could not be sent: claim it again next time."""
        t = alert_conditions.c
        with self.store.transaction() as conn:
            conn.execute(
                sa.update(alert_conditions)
                .where(self._key(condition) & (t.notified_at == at))
                .values(notified_at=None)
            )

    def ran_through(self, flow: str, at: datetime | None = None) -> None:
        values = {"last_ok_at": at or utcnow()}
        key = {"administration": self.administration, "flow": flow}
        with self.store.transaction() as conn:
            _upsert(conn, flow_heartbeats, {**key, **values}, values)

    def last_ran_through(self, flow: str) -> datetime | None:
        t = flow_heartbeats.c
        with self.store.engine.connect() as conn:
            value = conn.execute(
                sa.select(t.last_ok_at).where((t.administration == self.administration) & (t.flow == flow))
            ).scalar()
        return _aware(value)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without their zone; the store writes UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
