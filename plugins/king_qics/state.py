"""The sync-state store: what was synced, what failed, which invoices were booked, OAuth tokens.

SQLAlchemy Core over a SQLite file under the Airflow home by default (embedded setup), or any
database an Airflow connection points at (production: the same PostgreSQL as Airflow, its own
database or schema). Workers share it, so it is also where cross-process locks live.

Tables are created on first use (``StateStore.create_schema``); each concern has its own table:
- ``oauth_tokens``: the current (rotated) Qics refresh token and the cached access token per
  connection, encrypted with a key derived from the connection's client secret;
- ``synced_records``: per administration, entity and King key: the hash of the last mapped record
  written to Qics, its Qics id, when, and the current error (the failing list) with attempts;
- ``watermarks``: per administration and King table: up to when changes were read, and when the
  last full read was;
- ``run_reports``: one row per entity sync run with its counts;
- ``invoice_exports``: the export ledger, one row per administration and Qics invoice, with its
  recovery point (selected -> booking_sent -> booked -> pdf_attached -> marked, or skipped), the
  run that owns it while it is worked on, King's booking key, and the current error
  (see ``InvoiceLedger`` and docs/invoice_export.md);
- ``reconciliations`` and ``reconciliation_differences``: the latest reconciliation per
  administration and entity (``king_qics.sync.reconcile``): its counts, and every record and field
  where Qics differs from what King says it should be.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

STATE_CONN_ID_ENV = "KING_QICS_STATE_CONN_ID"
STATE_FILE_NAME = "king_qics_state.db"

metadata = sa.MetaData()

oauth_tokens = sa.Table(
    "oauth_tokens",
    metadata,
    sa.Column("conn_id", sa.String(250), primary_key=True),
    sa.Column("seed_fingerprint", sa.String(64), nullable=False),  # which connection token it grew from
    sa.Column("refresh_token", sa.Text, nullable=True),  # encrypted
    sa.Column("access_token", sa.Text, nullable=True),  # encrypted
    sa.Column("access_expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # a refresh under way (its token and start): the HTTP call holds no database lock
    sa.Column("refreshing_by", sa.String(64), nullable=True),
    sa.Column("refreshing_since", sa.DateTime(timezone=True), nullable=True),
)

synced_records = sa.Table(
    "synced_records",
    metadata,
    sa.Column("administration", sa.String(64), primary_key=True),
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("king_key", sa.String(64), primary_key=True),
    sa.Column("qics_id", sa.BigInteger, nullable=True),
    sa.Column("record_hash", sa.String(64), nullable=True),  # of the last mapped record written
    sa.Column("record_json", sa.Text, nullable=True),  # that record, for diffs and reconciliation
    sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),  # set while the record is failing
    # hash of the mapped record Qics rejected: the same record is not sent again by itself
    sa.Column("rejected_hash", sa.String(64), nullable=True),
    sa.Column("pending", sa.Text, nullable=True),  # synced, but an optional link waits (re-checked)
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=True),
)
# The status page counts and lists failing and pending records of 200 administrations at once.
for _column in ("last_error", "pending"):
    sa.Index(
        f"ix_synced_records_{_column}",
        synced_records.c.administration,
        synced_records.c.entity,
        sqlite_where=synced_records.c[_column].is_not(None),
        postgresql_where=synced_records.c[_column].is_not(None),
    )

watermarks = sa.Table(
    "watermarks",
    metadata,
    sa.Column("administration", sa.String(64), primary_key=True),
    sa.Column("king_table", sa.String(64), primary_key=True),
    sa.Column("read_until", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_full_read_at", sa.DateTime(timezone=True), nullable=True),
)

run_reports = sa.Table(
    "run_reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("administration", sa.String(64), nullable=False, index=True),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("full_read", sa.Boolean, nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("read", sa.Integer, nullable=False),
    sa.Column("new", sa.Integer, nullable=False),
    sa.Column("changed", sa.Integer, nullable=False),
    sa.Column("unchanged", sa.Integer, nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("pending", sa.Integer, nullable=False, default=0),
)
sa.Index("ix_run_reports_latest", run_reports.c.administration, run_reports.c.entity, run_reports.c.id)

locks = sa.Table(
    "locks",
    metadata,
    sa.Column("name", sa.String(250), primary_key=True),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlalchemy_url_from_connection(conn_id: str) -> str:
    from airflow.sdk import BaseHook

    uri = BaseHook.get_connection(conn_id).get_uri()
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg2://" + uri[len(prefix) :]
    return uri


LOCAL_EXECUTORS = {"LocalExecutor", "SequentialExecutor", "DebugExecutor"}


def _distributed_executors() -> list[str]:
    """The configured executors that may run tasks on other machines (``[core] executor``)."""
    from airflow.configuration import conf

    names = [part.strip() for part in str(conf.get("core", "executor", fallback="")).split(",")]
    names = [name.rpartition(":")[2].rpartition(".")[2] for name in names if name]  # alias:path.Class
    return [name for name in names if name not in LOCAL_EXECUTORS]


def _refuse_a_local_store_for(executors: list[str]) -> None:
    if executors:
        from king_qics.errors import ConfigurationError

        raise ConfigurationError(
            f"the sync-state store is a SQLite file on this worker, but the executor "
            f"({', '.join(executors)}) runs tasks on several machines: each would keep its own invoice "
            "ledger and token chain. Set state_store_conn_id in include/administrations.yaml or "
            f"${STATE_CONN_ID_ENV} to a shared database."
        )


def default_url() -> str:
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    return f"sqlite:///{home.resolve() / STATE_FILE_NAME}"


class StateStore:
    """Access to the state database; cheap to create, one engine per URL and process."""

    _engines: dict[str, Engine] = {}

    def __init__(self, url: str):
        self.url = url
        if url not in self._engines:
            self._engines[url] = _create_engine(url)
        self.engine = self._engines[url]

    @classmethod
    def from_settings(cls, conn_id: str | None = None) -> StateStore:
        """The store named by ``conn_id`` (or $KING_QICS_STATE_CONN_ID), else the SQLite default,
        which only an executor that runs every task on this machine may use."""
        conn_id = conn_id or os.environ.get(STATE_CONN_ID_ENV)
        if not conn_id:
            _refuse_a_local_store_for(_distributed_executors())
        store = cls(_sqlalchemy_url_from_connection(conn_id) if conn_id else default_url())
        store.create_schema()
        return store

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def create_schema(self) -> None:
        metadata.create_all(self.engine)
        _add_missing_columns(self.engine)
        for table in metadata.sorted_tables:  # indexes added after a table was created
            for index in table.indexes:
                index.create(self.engine, checkfirst=True)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def locked(self, name: str) -> Iterator[Connection]:
        """A transaction that holds an exclusive lock named ``name`` across processes and hosts.

        PostgreSQL: a row lock (``SELECT ... FOR UPDATE``) on the lock's row. SQLite: every
        transaction starts with ``BEGIN IMMEDIATE``, which already takes the database write lock.
        """
        with self.engine.begin() as conn:
            if not self.is_sqlite:
                insert = _insert_ignore(conn, locks, {"name": name})
                conn.execute(insert)
                conn.execute(sa.select(locks.c.name).where(locks.c.name == name).with_for_update())
            yield conn


def _add_missing_columns(engine: Engine) -> None:
    """Columns added to a table after a store was created (all nullable): ALTER TABLE ADD COLUMN,
    so an existing state store keeps its data when the package is upgraded."""
    inspector = sa.inspect(engine)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing = [column for column in table.columns if column.name not in present]
        if not missing:
            continue
        with engine.begin() as conn:
            for column in missing:
                kind = column.type.compile(dialect=engine.dialect)
                conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')


def _insert(conn: Connection, table: sa.Table):
    """INSERT with ON CONFLICT support, for the dialects the store runs on (SQLite, PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _insert_ignore(conn: Connection, table: sa.Table, values: dict):
    return _insert(conn, table).values(**values).on_conflict_do_nothing()


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _no_pysqlite_transactions(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            # One commit per synced record: in WAL mode NORMAL skips the fsync per commit and stays
            # consistent; only a power cut may lose the last commits (re-checked by the next run).
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")
            dbapi_connection.execute("PRAGMA busy_timeout=60000")

        @sa.event.listens_for(engine, "begin")
        def _begin_immediate(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _upsert(conn: Connection, table: sa.Table, values: dict, update: dict):
    keys = [column.name for column in table.primary_key.columns]
    conn.execute(
        _insert(conn, table).values(**values).on_conflict_do_update(index_elements=keys, set_=update)
    )


@cache
def _saved_upsert(dialect: str, columns: tuple[str, ...]):
    """The upsert of SyncedRecords.saved, built once: it runs once per synced record, and building
    the statement anew each time cost more than executing it."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(synced_records)
    keys = [column.name for column in synced_records.primary_key.columns]
    return statement.on_conflict_do_update(
        index_elements=keys, set_={name: statement.excluded[name] for name in columns}
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
        now = utcnow()
        values = {
            "qics_id": qics_id,
            "record_hash": record_hash,
            "record_json": record_json,
            "pending": pending,
            "synced_at": now,
            "last_error": None,
            "rejected_hash": None,
            "attempts": 0,
            "first_failed_at": None,
            "last_failed_at": None,
        }
        key = {"administration": self.administration, "entity": self.entity, "king_key": king_key}
        with self.store.transaction() as conn:
            conn.execute(_saved_upsert(conn.dialect.name, tuple(values)), {**key, **values})

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


# -- oauth_tokens (owned by king_qics.hooks.oauth) ------------------------------------------------


def load_oauth_token(conn: Connection, conn_id: str) -> sa.Row | None:
    """The stored token row of a connection (values still encrypted), inside the caller's transaction."""
    return conn.execute(sa.select(oauth_tokens).where(oauth_tokens.c.conn_id == conn_id)).first()


def save_oauth_token(
    conn: Connection,
    conn_id: str,
    *,
    seed_fingerprint: str,
    refresh_token: str | None,
    access_token: str | None,
    access_expires_at: datetime | None,
) -> None:
    """Store a connection's (encrypted) token chain and end its refresh, in the caller's transaction."""
    values = {
        "seed_fingerprint": seed_fingerprint,
        "refresh_token": refresh_token,
        "access_token": access_token,
        "access_expires_at": access_expires_at,
        "refreshing_by": None,
        "refreshing_since": None,
        "updated_at": utcnow(),
    }
    _upsert(conn, oauth_tokens, {"conn_id": conn_id, **values}, values)


def claim_oauth_refresh(conn: Connection, conn_id: str, fingerprint: str, me: str, lease: timedelta) -> bool:
    """Take the right to refresh a connection's tokens (no other refresh under way, or one older than
    ``lease``), in the caller's short transaction: the HTTP call itself then holds no lock."""
    now = utcnow()
    placeholder = {"conn_id": conn_id, "seed_fingerprint": fingerprint, "updated_at": now}
    conn.execute(_insert_ignore(conn, oauth_tokens, placeholder))
    t = oauth_tokens.c
    free = t.refreshing_by.is_(None) | (t.refreshing_since < now - lease)
    result = conn.execute(
        sa.update(oauth_tokens)
        .where((t.conn_id == conn_id) & free)
        .values(refreshing_by=me, refreshing_since=now, updated_at=now)
    )
    return result.rowcount == 1


def release_oauth_refresh(store: StateStore, conn_id: str, me: str) -> None:
    t = oauth_tokens.c
    with store.transaction() as conn:
        conn.execute(
            sa.update(oauth_tokens)
            .where((t.conn_id == conn_id) & (t.refreshing_by == me))
            .values(refreshing_by=None, refreshing_since=None)
        )


# -- invoice_exports (owned by king_qics.sync.invoices) -------------------------------------------

invoice_exports = sa.Table(
    "invoice_exports",
    metadata,
    sa.Column("administration", sa.String(64), primary_key=True),
    sa.Column("invoice_id", sa.BigInteger, primary_key=True, autoincrement=False),  # InvoiceHeaderId
    sa.Column("invoice_number", sa.String(64), nullable=True),
    sa.Column("invoice_date", sa.Date, nullable=True),
    # selected | booking_sent | booked | pdf_attached | marked | skipped (see InvoiceLedger)
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("invoice_json", sa.Text, nullable=True),  # the Qics invoice (+ lines, customer code)
    sa.Column("booking_json", sa.Text, nullable=True),  # the BOE rows as last sent to King
    sa.Column("booking_key", sa.String(64), nullable=True),  # King DAGB;JR;PN;RG
    sa.Column("with_pdf", sa.Boolean, nullable=True),  # the booking carries the invoice PDF
    sa.Column("found_by_lookup", sa.Boolean, nullable=False, default=False),
    sa.Column("king_fact", sa.String(64), nullable=True),  # FACT as King holds it (it may renumber)
    sa.Column("owner", sa.String(64), nullable=True),  # claim token of the run working on it
    sa.Column("epoch", sa.Integer, nullable=True),  # fencing token: +1 with every claim
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
    # the holder's claim holds until then (its own worst case); renewed with every change
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    # when the booking was last put on the wire (each attempt, after the hook's own retries too);
    # NULL while in booking_sent: it never left this machine
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("post_attempts", sa.Integer, nullable=False, default=0),
    sa.Column("booked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("marked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("note", sa.Text, nullable=True),  # why it waits (pending) or why it was skipped
    sa.Column("last_error", sa.Text, nullable=True),  # set while the invoice is failing
    sa.Column("reported_error", sa.Text, nullable=True),  # the error last written to Qics (EntityState)
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_invoice_exports_state", invoice_exports.c.administration, invoice_exports.c.state)


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
def _ledger_claim():
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
        .where(_ledger_key() & t.state.in_(EXPORT_OPEN_STATES) & takeable)
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

    def claim(self, invoice_id: int, token: str, lease: timedelta) -> Claim | None:
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
            if conn.execute(_ledger_claim(), params).rowcount != 1:
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


# -- reconciliations (owned by king_qics.sync.reconcile) ------------------------------------------

reconciliations = sa.Table(
    "reconciliations",
    metadata,
    sa.Column("administration", sa.String(64), primary_key=True),
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(250), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("king_records", sa.Integer, nullable=False),
    sa.Column("qics_records", sa.Integer, nullable=False),
    sa.Column("differing_records", sa.Integer, nullable=False),  # records with at least one difference
    sa.Column("differences", sa.Integer, nullable=False),  # rows in reconciliation_differences
)

reconciliation_differences = sa.Table(
    "reconciliation_differences",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("administration", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("king_key", sa.String(64), nullable=False),
    sa.Column("qics_id", sa.BigInteger, nullable=True),
    # field: a Qics field differs; missing: King has it, Qics does not; unmapped: King's record
    # cannot be mapped (the reason is in ``expected``), so what Qics should hold is unknown
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("field", sa.String(128), nullable=True),
    sa.Column("expected", sa.Text, nullable=True),  # JSON of the value King says Qics should hold
    sa.Column("actual", sa.Text, nullable=True),  # JSON of the value Qics holds
)
sa.Index(
    "ix_reconciliation_differences_entity",
    reconciliation_differences.c.administration,
    reconciliation_differences.c.entity,
    reconciliation_differences.c.king_key,
)


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
