"""What the King <-> Qics page shows, read from the sync-state store (read-only).

Aggregates are one GROUP BY query per table for all administrations at once, and long lists
(failing records, invoices, reconciliation differences) are counted and read a page at a time,
so the page stays fast for hundreds of administrations and hundreds of thousands of records.
Values come back as plain dicts (the HTML page and the JSON API render the same data).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from king_qics.state import (
    EXPORT_OPEN_STATES,
    StateStore,
    invoice_exports,
    reconciliation_differences,
    reconciliations,
    run_reports,
    synced_records,
)

MASTER_DATA_ENTITIES = ("vat_codes", "payment_conditions", "cost_centers", "items", "customers")
PROJECTS_EMPLOYEES_ENTITIES = ("employees", "projects")
COUNTS = ("read", "new", "changed", "unchanged", "failed", "pending")


def _utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes (stored as UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _dicts(result) -> list[dict[str, Any]]:
    rows = []
    for row in result.mappings():
        rows.append({k: _utc(v) if isinstance(v, datetime) else v for k, v in row.items()})
    return rows


def dag_id(administration: str, kind: str) -> str:
    return f"king_qics__{administration}__{kind}"


# -- the overview: every administration, one line each --------------------------------------------


def overview(store: StateStore, administrations: list[str]) -> dict[str, dict[str, Any]]:
    """Per administration: last run, counts of the latest run of each entity, records failing and
    pending now, the invoice ledger per state, and the latest reconciliation."""
    summary: dict[str, dict[str, Any]] = {
        adm: {
            "last_run_at": None,
            "latest": dict.fromkeys(COUNTS, 0),
            "synced": 0,
            "failing": 0,
            "pending": 0,
            "invoices": {"exported": 0, "pending": 0, "failed": 0, "skipped": 0},
            "reconciled_at": None,
            "differing_records": None,
        }
        for adm in administrations
    }
    with store.engine.connect() as conn:
        for run in _latest_runs(conn, None):
            adm = summary.get(run["administration"])
            if adm is None:
                continue
            for name in COUNTS:
                adm["latest"][name] += run[name]
            if adm["last_run_at"] is None or run["finished_at"] > adm["last_run_at"]:
                adm["last_run_at"] = run["finished_at"]

        t = synced_records.c
        for column, name in ((t.qics_id, "synced"), (t.last_error, "failing"), (t.pending, "pending")):
            rows = conn.execute(
                sa.select(t.administration, sa.func.count())
                .where(column.is_not(None))
                .group_by(t.administration)
            )
            for administration, count in rows:
                if administration in summary:
                    summary[administration][name] = count

        for administration, bucket, count in conn.execute(_invoice_buckets(None)):
            if administration in summary:
                summary[administration]["invoices"][bucket] += count

        r = reconciliations.c
        rows = conn.execute(
            sa.select(r.administration, sa.func.max(r.started_at), sa.func.sum(r.differing_records)).group_by(
                r.administration
            )
        )
        for administration, reconciled_at, differing in rows:
            if administration in summary:
                summary[administration]["reconciled_at"] = _utc(reconciled_at)
                summary[administration]["differing_records"] = int(differing or 0)
    return summary


def _latest_runs(conn, administration: str | None) -> list[dict[str, Any]]:
    """The latest run report of each (administration, entity)."""
    t = run_reports.c
    latest = sa.select(sa.func.max(t.id).label("id")).group_by(t.administration, t.entity)
    if administration is not None:
        latest = latest.where(t.administration == administration)
    rows = _dicts(conn.execute(sa.select(run_reports).where(t.id.in_(latest.scalar_subquery()))))
    return rows


def _invoice_buckets(administration: str | None):
    """(administration, bucket, count): exported, pending (open, no error), failed, skipped."""
    t = invoice_exports.c
    bucket = sa.case(
        (t.state == "marked", "exported"),
        (t.state == "skipped", "skipped"),
        (t.last_error.is_not(None), "failed"),
        else_="pending",
    ).label("bucket")
    query = sa.select(t.administration, bucket, sa.func.count()).group_by(t.administration, bucket)
    if administration is not None:
        query = query.where(t.administration == administration)
    return query


# -- one administration ---------------------------------------------------------------------------


def administration_detail(store: StateStore, administration: str, limit: int = 20) -> dict[str, Any]:
    """Everything the administration's page shows; each list holds its first ``limit`` rows."""
    with store.engine.connect() as conn:
        runs = sorted(_latest_runs(conn, administration), key=lambda run: _entity_order(run["entity"]))
        pe_runs = {run["run_id"] for run in runs if run["entity"] in PROJECTS_EMPLOYEES_ENTITIES}
        for run in runs:
            run["dag_id"] = dag_id(administration, _dag_kind(run["entity"], run["run_id"], pe_runs))
            run["task"] = (
                "customer_managers"
                if run["entity"] == "customers" and run["dag_id"].endswith("projects_employees")
                else run["entity"]
            )
        buckets = dict.fromkeys(("exported", "pending", "failed", "skipped"), 0)
        for _, bucket, count in conn.execute(_invoice_buckets(administration)):
            buckets[bucket] += count
        r = reconciliations.c
        reconciled = _dicts(
            conn.execute(sa.select(reconciliations).where(r.administration == administration))
        )
        reconciled.sort(key=lambda row: _entity_order(row["entity"]))
        lists = {name: page(conn, administration, name, 0, limit) for name in LISTS}
    return {
        "administration": administration,
        "runs": runs,
        "invoices": buckets,
        "reconciliations": reconciled,
        "lists": lists,
    }


def _entity_order(entity: str) -> int:
    order = MASTER_DATA_ENTITIES + PROJECTS_EMPLOYEES_ENTITIES
    return order.index(entity) if entity in order else len(order)


def _dag_kind(entity: str, run_id: str | None, projects_employees_runs: set) -> str:
    """Which DAG wrote a run report. Customers are also written by the projects/employees DAG's
    customer_managers task: in the same DAG run as its employees."""
    if entity in PROJECTS_EMPLOYEES_ENTITIES:
        return "projects_employees"
    if entity == "customers" and run_id is not None and run_id in projects_employees_runs:
        return "projects_employees"
    return "master_data"


# -- the long lists, a page at a time -------------------------------------------------------------


@dataclass(frozen=True)
class ListSpec:
    title: str
    table: sa.Table
    columns: tuple[str, ...]
    where: Any  # a function of the table's columns
    order_by: Any


def _open_invoices(c):
    return c.state.in_(EXPORT_OPEN_STATES)


LISTS: dict[str, ListSpec] = {
    "failing": ListSpec(
        "Records failing now",
        synced_records,
        ("entity", "king_key", "last_error", "attempts", "first_failed_at", "last_failed_at"),
        lambda c: c.last_error.is_not(None),
        lambda c: (c.entity, c.king_key),
    ),
    "pending": ListSpec(
        "Records synced, a link still waiting",
        synced_records,
        ("entity", "king_key", "qics_id", "pending", "synced_at"),
        lambda c: c.pending.is_not(None),
        lambda c: (c.entity, c.king_key),
    ),
    "invoices_failed": ListSpec(
        "Invoices failing",
        invoice_exports,
        ("invoice_number", "invoice_id", "invoice_date", "state", "last_error", "attempts", "last_failed_at"),
        lambda c: _open_invoices(c) & c.last_error.is_not(None),
        lambda c: (c.invoice_id,),
    ),
    "invoices_pending": ListSpec(
        "Invoices pending",
        invoice_exports,
        ("invoice_number", "invoice_id", "invoice_date", "state", "booking_key", "note", "updated_at"),
        lambda c: _open_invoices(c) & c.last_error.is_(None),
        lambda c: (c.invoice_id,),
    ),
    "invoices_exported": ListSpec(
        "Invoices exported",
        invoice_exports,
        ("invoice_number", "invoice_id", "invoice_date", "booking_key", "with_pdf", "booked_at", "marked_at"),
        lambda c: c.state == "marked",
        lambda c: (c.invoice_id.desc(),),
    ),
    "differences": ListSpec(
        "Where Qics differs from King (latest reconciliation)",
        reconciliation_differences,
        ("entity", "king_key", "qics_id", "kind", "field", "expected", "actual"),
        lambda c: sa.true(),
        lambda c: (c.entity, c.id),
    ),
}


def page(conn, administration: str, name: str, offset: int, limit: int) -> dict[str, Any]:
    """One page of a list: its total count and ``limit`` rows from ``offset``."""
    spec = LISTS[name]
    c = spec.table.c
    where = (c.administration == administration) & spec.where(c)
    total = conn.execute(sa.select(sa.func.count()).select_from(spec.table).where(where)).scalar_one()
    rows = _dicts(
        conn.execute(
            sa.select(*(c[column] for column in spec.columns))
            .where(where)
            .order_by(*spec.order_by(c))
            .offset(offset)
            .limit(limit)
        )
    )
    return {"name": name, "title": spec.title, "columns": list(spec.columns), "total": total, "rows": rows}


def list_page(store: StateStore, administration: str, name: str, offset: int, limit: int) -> dict[str, Any]:
    with store.engine.connect() as conn:
        result = page(conn, administration, name, offset, limit)
    return {**result, "offset": offset, "limit": limit}
