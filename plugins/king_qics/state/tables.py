"""The state store's tables (SQLAlchemy Core), one per concern; see the package docstring."""

from __future__ import annotations

import sqlalchemy as sa

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

# Qics -> King: up to which InvoiceHeaderId the processed invoices were read (king_qics.state.marks).
invoice_watermarks = sa.Table(
    "invoice_watermarks",
    metadata,
    sa.Column("administration", sa.String(64), primary_key=True),
    sa.Column("last_invoice_id", sa.BigInteger, nullable=True),
    sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_full_read_at", sa.DateTime(timezone=True), nullable=True),
)

# The gate of a master-data run: a fingerprint of the King rows changed since a day, as the last
# run that synced them saw them (king_qics.state.marks, king_qics.sync.gate).
king_change_checks = sa.Table(
    "king_change_checks",
    metadata,
    sa.Column("administration", sa.String(64), primary_key=True),
    sa.Column("king_table", sa.String(64), primary_key=True),
    sa.Column("since_day", sa.Date, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
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


# Alerts (king_qics.alerts): one row per administration and condition ("stalled", "invoices_waiting",
# "credentials:qics", "credentials:king", "digest"): open while it holds, so it is told once, and
# once more when it clears.
alert_conditions = sa.Table(
    "alert_conditions",
    metadata,
    sa.Column("administration", sa.String(64), primary_key=True),
    sa.Column("condition", sa.String(64), primary_key=True),
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),  # NULL: not holding now
    sa.Column("summary", sa.Text, nullable=True),  # what the opening message said, in one line
    sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),  # the last message about it
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
)

# When a flow last ran through (the invoice export: its export task got through the ledger, with
# or without failed invoices): what the stalled-flow check compares with.
flow_heartbeats = sa.Table(
    "flow_heartbeats",
    metadata,
    sa.Column("administration", sa.String(64), primary_key=True),
    sa.Column("flow", sa.String(64), primary_key=True),
    sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=False),
)

# Failures a person accepted as is (the maintenance DAG): a record off the failing list, or an
# invoice that will not be booked, each with the failure it had and the person's note.
accepted = sa.Table(
    "accepted",
    metadata,
    sa.Column("administration", sa.String(64), primary_key=True),
    sa.Column("entity", sa.String(64), primary_key=True),  # a master-data entity, or "invoices"
    sa.Column("key", sa.String(64), primary_key=True),  # the King key, or the invoice number
    sa.Column("reason", sa.Text, nullable=True),  # the failure accepted
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("accepted_by", sa.String(250), nullable=True),
    sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=True),
)
