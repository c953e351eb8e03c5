"""What the master-data sync keeps: synced records (the failing and pending lists among them),
watermarks, run reports and the latest reconciliation."""

from __future__ import annotations

import time
from datetime import datetime

import sqlalchemy as sa

from king_qics.state.store import StateStore, _saved_upsert, _upsert, utcnow
from king_qics.state.tables import (
    reconciliation_differences,
    reconciliations,
    run_reports,
    synced_records,
    watermarks,
)


class SyncedRecords:
    """Per administration and entity: which King records are in Qics, as what, and which fail."""

    def __init__(self, store: StateStore, administration: str, entity: str):
        self.store, self.administration, self.entity = store, administration, entity

    def _where(self):
        t = synced_records.c
        return (t.administration == self.administration) & (t.entity == self.entity)

    def all(self) -> dict[str, sa.Row]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(synced_records).where(self._where())).all()
        return {row.king_key: row for row in rows}

    def qics_ids(self) -> dict[str, int]:
        """King key -> Qics id of every record that exists in Qics (the lookup of other entities)."""
        t = synced_records.c
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.king_key, t.qics_id).where(self._where() & t.qics_id.is_not(None))
            ).all()
        return {row.king_key: int(row.qics_id) for row in rows}

    def failing(self) -> dict[str, str]:
        t = synced_records.c
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.king_key, t.last_error).where(self._where() & t.last_error.is_not(None))
            ).all()
        return {row.king_key: row.last_error for row in rows}

    def pending(self) -> dict[str, str]:
        """Synced records whose optional links still wait: King key -> what they wait for."""
        t = synced_records.c
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.king_key, t.pending).where(self._where() & t.pending.is_not(None))
            ).all()
        return {row.king_key: row.pending for row in rows}

    def saved(
        self, king_key: str, qics_id: int, record_hash: str, record_json: str, pending: str | None = None
    ) -> None:
        self.saved_many([self.success(king_key, qics_id, record_hash, record_json, pending)])

    def success(
        self, king_key: str, qics_id: int, record_hash: str, record_json: str, pending: str | None = None
    ) -> dict:
        """The row ``saved`` stores for a record now in Qics (for ``saved_many``)."""
        return {
            "administration": self.administration,
            "entity": self.entity,
            "king_key": king_key,
            "qics_id": qics_id,
            "record_hash": record_hash,
            "record_json": record_json,
            "pending": pending,
            "synced_at": utcnow(),
            "last_error": None,
            "rejected_hash": None,
            "attempts": 0,
            "first_failed_at": None,
            "last_failed_at": None,
        }

    def saved_many(self, rows: list[dict]) -> None:
        """Store several successes (rows of ``success``) in one transaction."""
        if not rows:
            return
        columns = tuple(name for name in rows[0] if name not in ("administration", "entity", "king_key"))
        with self.store.transaction() as conn:
            conn.execute(_saved_upsert(conn.dialect.name, columns), rows)

    def removed_in_king(self, king_key: str) -> None:
        """Stop retrying a record King no longer has: forget it if it never reached Qics, else
        clear its error and pending note (the Qics record itself stays: deletes never propagate)."""
        t = synced_records.c
        where = self._where() & (t.king_key == king_key)
        with self.store.transaction() as conn:
            conn.execute(sa.delete(synced_records).where(where & t.qics_id.is_(None)))
            conn.execute(sa.update(synced_records).where(where).values(last_error=None, pending=None))

    def failed(self, king_key: str, reason: str, rejected_hash: str | None = None) -> None:
        """Put a record on the failing list; ``rejected_hash``: Qics refused exactly this mapped
        record (it is not sent again until it changes), None: it never reached Qics."""
        now = utcnow()
        t = synced_records
        key = {"administration": self.administration, "entity": self.entity, "king_key": king_key}
        first = {"last_error": reason, "rejected_hash": rejected_hash, "attempts": 1}
        with self.store.transaction() as conn:
            _upsert(
                conn,
                t,
                {**key, **first, "first_failed_at": now, "last_failed_at": now},
                {
                    "last_error": reason,
                    "rejected_hash": rejected_hash,
                    "attempts": t.c.attempts + 1,
                    "first_failed_at": sa.func.coalesce(t.c.first_failed_at, now),
                    "last_failed_at": now,
                },
            )


class SavedBatch:
    """The successes of one run, stored together: a commit per ``size`` records or per ``seconds``,
    whichever comes first, and at ``flush()``. A success not yet stored when the task dies is found
    again by the next run, which matches the record in Qics by its King key (sync.master_data)."""

    def __init__(self, records: SyncedRecords, size: int = 500, seconds: float = 1.0):
        self.records, self.size, self.seconds = records, size, seconds
        self.rows: list[dict] = []
        self._since = time.monotonic()

    def add(self, king_key: str, qics_id: int, record_hash: str, record_json: str, pending: str | None):
        self.rows.append(self.records.success(king_key, qics_id, record_hash, record_json, pending))
        if len(self.rows) >= self.size or time.monotonic() - self._since >= self.seconds:
            self.flush()

    def flush(self) -> None:
        rows, self.rows, self._since = self.rows, [], time.monotonic()
        self.records.saved_many(rows)


class Watermarks:
    """Up to when a King table's changes were read, per administration."""

    def __init__(self, store: StateStore, administration: str):
        self.store, self.administration = store, administration

    def get(self, king_table: str) -> sa.Row | None:
        t = watermarks.c
        with self.store.engine.connect() as conn:
            return conn.execute(
                sa.select(watermarks).where(
                    (t.administration == self.administration) & (t.king_table == king_table)
                )
            ).first()

    def advance(self, king_table: str, read_until: datetime, full_read: bool) -> None:
        values: dict = {"read_until": read_until}
        if full_read:
            values["last_full_read_at"] = read_until
        key = {"administration": self.administration, "king_table": king_table}
        with self.store.transaction() as conn:
            _upsert(conn, watermarks, {**key, **values}, values)


def add_run_report(store: StateStore, **values) -> None:
    with store.transaction() as conn:
        conn.execute(sa.insert(run_reports).values(**values))


def save_reconciliation(store: StateStore, report: dict, differences: list[dict]) -> None:
    """Replace the latest reconciliation of one administration and entity (one transaction)."""
    key = {"administration": report["administration"], "entity": report["entity"]}
    t = reconciliation_differences.c
    with store.transaction() as conn:
        conn.execute(
            sa.delete(reconciliation_differences).where(
                (t.administration == key["administration"]) & (t.entity == key["entity"])
            )
        )
        if differences:
            conn.execute(sa.insert(reconciliation_differences), [{**key, **row} for row in differences])
        values = {name: value for name, value in report.items() if name not in key}
        _upsert(conn, reconciliations, report, values)


def last_reconciled_at(store: StateStore, administration: str) -> datetime | None:
    t = reconciliations.c
    with store.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.max(t.started_at)).where(t.administration == administration)
        ).scalar()
