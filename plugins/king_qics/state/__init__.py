"""The sync-state store: what was synced, what failed, which invoices were booked, OAuth tokens.

SQLAlchemy Core over a SQLite file under the Airflow home by default (embedded setup), or any
database an Airflow connection points at (production: the same PostgreSQL as Airflow, its own
database or schema). Workers share it: the ledger's claims and the token chain's refresh claim
coordinate them.

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
- ``accepted``: failures a person accepted as is (the maintenance DAG), with the failure and the
  note (``Acceptances``);
- ``reconciliations`` and ``reconciliation_differences``: the latest reconciliation per
  administration and entity (``king_qics.sync.reconcile``): its counts, and every record and field
  where Qics differs from what King says it should be;
- ``alert_conditions`` and ``flow_heartbeats``: which alert conditions hold and were told, and when
  the invoice export last ran through (``AlertState``, king_qics.alerts).
"""

from king_qics.state.accepted import INVOICES, Acceptances, NotAcceptable
from king_qics.state.alerts import AlertState
from king_qics.state.ledger import (
    EXPORT_DONE_STATES,
    EXPORT_OPEN_STATES,
    ON_DEMAND_STATES,
    REEXPORT_FROM,
    TRANSITIONS,
    Claim,
    ClaimLost,
    ExportState,
    InvoiceLedger,
)
from king_qics.state.marks import InvoiceWatermark, KingChangeChecks
from king_qics.state.records import (
    SavedBatch,
    SyncedRecords,
    Watermarks,
    add_run_report,
    last_reconciled_at,
    save_reconciliation,
)
from king_qics.state.store import STATE_CONN_ID_ENV, STATE_FILE_NAME, StateStore, default_url, utcnow
from king_qics.state.tables import (
    accepted,
    alert_conditions,
    flow_heartbeats,
    invoice_exports,
    metadata,
    oauth_tokens,
    reconciliation_differences,
    reconciliations,
    run_reports,
    synced_records,
    watermarks,
)
from king_qics.state.tokens import (
    claim_oauth_refresh,
    load_oauth_token,
    release_oauth_refresh,
    save_oauth_token,
)

__all__ = [
    "INVOICES",
    "Acceptances",
    "NotAcceptable",
    "accepted",
    "AlertState",
    "EXPORT_DONE_STATES",
    "EXPORT_OPEN_STATES",
    "ON_DEMAND_STATES",
    "REEXPORT_FROM",
    "STATE_CONN_ID_ENV",
    "STATE_FILE_NAME",
    "TRANSITIONS",
    "Claim",
    "ClaimLost",
    "ExportState",
    "InvoiceLedger",
    "InvoiceWatermark",
    "KingChangeChecks",
    "SavedBatch",
    "StateStore",
    "SyncedRecords",
    "Watermarks",
    "add_run_report",
    "alert_conditions",
    "claim_oauth_refresh",
    "default_url",
    "flow_heartbeats",
    "invoice_exports",
    "last_reconciled_at",
    "load_oauth_token",
    "metadata",
    "oauth_tokens",
    "reconciliation_differences",
    "reconciliations",
    "release_oauth_refresh",
    "run_reports",
    "save_oauth_token",
    "save_reconciliation",
    "synced_records",
    "utcnow",
    "watermarks",
]
