"""What the King <-> Qics page shows, read from the sync-state store (read-only).

Aggregates are one GROUP BY query per table for all administrations at once, and long lists
(failing records, invoices, reconciliation differences) are counted and read a page at a time,
so the page stays fast for hundreds of administrations and hundreds of thousands of records.
Values come back as plain dicts (the HTML page and the JSON API render the same data).

Counts shown together always come from one run of one task, with that run's time: run reports
are kept per task (``run_reports.entity`` is the task: the entity's name, or ``customer_managers``
for the projects/employees DAG's second pass over customers), never summed across runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from king_qics import catalog
from king_qics.ledger_words import LEDGER_STATE_WORDS
from king_qics.state import (
    EXPORT_OPEN_STATES,
    StateStore,
    accepted,
    invoice_exports,
    reconciliation_differences,
    reconciliations,
    run_reports,
    synced_records,
)

TASKS = catalog.ENTITY_TASKS  # task -> (DAG kind, entity it syncs), in the order the DAGs run them
COUNTS = ("read", "new", "changed", "unchanged", "failed", "pending")
INVOICE_BUCKETS = ("exported", "in_progress", "failing", "skipped")


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
    return catalog.dag_id(administration, kind)


def _task_run(run: dict[str, Any]) -> dict[str, Any]:
    """A run report as one run of one task: which DAG, which entity."""
    task = run["entity"]
    kind, entity = TASKS.get(task, ("master_data", task))
    return {**run, "task": task, "entity": entity, "dag_id": dag_id(run["administration"], kind)}


# -- the overview: every administration, one line each --------------------------------------------


def overview(store: StateStore, administrations: list[str]) -> dict[str, dict[str, Any]]:
    """Per administration: when a task last ran and the latest runs that failed records (each with
    its task and time), records failing and pending now, the invoice ledger now, and the latest
    reconciliation (stale when Qics was written after it)."""
    summary: dict[str, dict[str, Any]] = {
        adm: {
            "last_run_at": None,
            "runs_with_failures": [],
            "records": {"failing": 0, "pending": 0},
            "invoices": dict.fromkeys(INVOICE_BUCKETS, 0),
            "reconciled_at": None,
            "differing_records": None,
            "stale_since": None,
        }
        for adm in administrations
    }
    with store.engine.connect() as conn:
        for run in map(_task_run, _latest_runs(conn, None)):
            adm = summary.get(run["administration"])
            if adm is None:
                continue
            if adm["last_run_at"] is None or run["finished_at"] > adm["last_run_at"]:
                adm["last_run_at"] = run["finished_at"]
            if run["failed"]:
                adm["runs_with_failures"].append(run)
        for adm in summary.values():
            adm["runs_with_failures"].sort(key=lambda run: _task_order(run["task"]))

        t = synced_records.c
        for column, name in ((t.last_error, "failing"), (t.pending, "pending")):
            rows = conn.execute(
                sa.select(t.administration, sa.func.count())
                .where(column.is_not(None))
                .group_by(t.administration)
            )
            for administration, count in rows:
                if administration in summary:
                    summary[administration]["records"][name] = count

        for administration, bucket, count in conn.execute(_invoice_buckets(None)):
            if administration in summary:
                summary[administration]["invoices"][bucket] += count

        written = _last_written(conn, None)
        for rec in _dicts(conn.execute(sa.select(reconciliations))):
            adm = summary.get(rec["administration"])
            if adm is None:
                continue
            if adm["reconciled_at"] is None or rec["started_at"] > adm["reconciled_at"]:
                adm["reconciled_at"] = rec["started_at"]
            adm["differing_records"] = (adm["differing_records"] or 0) + rec["differing_records"]
            since = _stale_since(rec, written)
            if since is not None and (adm["stale_since"] is None or since > adm["stale_since"]):
                adm["stale_since"] = since
    return summary


def _latest_runs(conn, administration: str | None) -> list[dict[str, Any]]:
    """The latest run report of each (administration, task)."""
    t = run_reports.c
    latest = sa.select(sa.func.max(t.id).label("id")).group_by(t.administration, t.entity)
    if administration is not None:
        latest = latest.where(t.administration == administration)
    return _dicts(conn.execute(sa.select(run_reports).where(t.id.in_(latest.scalar_subquery()))))


def _last_written(conn, administration: str | None) -> dict[tuple[str, str], datetime]:
    """(administration, entity) -> when a run last wrote records of the entity to Qics."""
    t = run_reports.c
    query = (
        sa.select(t.administration, t.entity, sa.func.max(t.finished_at))
        .where((t.new + t.changed) > 0)
        .group_by(t.administration, t.entity)
    )
    if administration is not None:
        query = query.where(t.administration == administration)
    written: dict[tuple[str, str], datetime] = {}
    for adm, task, finished in conn.execute(query):
        key = (adm, TASKS.get(task, ("", task))[1])
        finished = _utc(finished)
        if key not in written or finished > written[key]:
            written[key] = finished
    return written


def _stale_since(reconciliation: dict[str, Any], written: dict) -> datetime | None:
    """When Qics was written after this reconciliation (it no longer describes Qics), else None."""
    last = written.get((reconciliation["administration"], reconciliation["entity"]))
    return last if last is not None and last > reconciliation["started_at"] else None


def _invoice_buckets(administration: str | None):
    """(administration, bucket, count): exported (booked and marked), in progress (open, no
    error), failing (open, with an error), skipped."""
    t = invoice_exports.c
    bucket = sa.case(
        (t.state == "marked", "exported"),
        (t.state == "skipped", "skipped"),
        (t.last_error.is_not(None), "failing"),
        else_="in_progress",
    ).label("bucket")
    query = sa.select(t.administration, bucket, sa.func.count()).group_by(t.administration, bucket)
    if administration is not None:
        query = query.where(t.administration == administration)
    return query


# -- one administration ---------------------------------------------------------------------------


def administration_detail(store: StateStore, administration: str, limit: int = 20) -> dict[str, Any]:
    """Everything the administration's page shows; each list holds its first ``limit`` rows."""
    with store.engine.connect() as conn:
        runs = sorted(
            map(_task_run, _latest_runs(conn, administration)), key=lambda r: _task_order(r["task"])
        )
        buckets = dict.fromkeys(INVOICE_BUCKETS, 0)
        for _, bucket, count in conn.execute(_invoice_buckets(administration)):
            buckets[bucket] += count
        r = reconciliations.c
        reconciled = _dicts(
            conn.execute(sa.select(reconciliations).where(r.administration == administration))
        )
        written = _last_written(conn, administration)
        for rec in reconciled:
            rec["stale_since"] = _stale_since(rec, written)
        reconciled.sort(key=lambda row: _task_order(row["entity"]))
        lists = {name: page(conn, administration, name, 0, limit) for name in LISTS}
        ledger = _ledger_states(conn, administration)
    return {
        "administration": administration,
        "runs": runs,
        "invoices": buckets,
        "ledger": ledger,
        "reconciliations": reconciled,
        "lists": lists,
    }


def _ledger_states(conn, administration: str) -> list[dict[str, Any]]:
    """Every ledger state in order, in a bookkeeper's words: invoices in it, of which failing."""
    t = invoice_exports.c
    counts = {
        state: (total, failing)
        for state, total, failing in conn.execute(
            sa.select(t.state, sa.func.count(), sa.func.count(t.last_error))
            .where(t.administration == administration)
            .group_by(t.state)
        )
    }
    rows = []
    for state, words in LEDGER_STATE_WORDS.items():
        invoices, failing = counts.get(state, (0, 0))
        rows.append({"state": state, "words": words, "invoices": invoices, "failing": failing})
    return rows


def _task_order(task: str) -> int:
    order = list(TASKS)
    return order.index(task) if task in order else len(order)


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
        "Records failing now: not synced, retried by every run",
        synced_records,
        ("entity", "king_key", "last_error", "attempts", "first_failed_at", "last_failed_at"),
        lambda c: c.last_error.is_not(None),
        lambda c: (c.entity, c.king_key),
    ),
    "pending": ListSpec(
        "Records pending: synced, a link still waits (completed when it resolves)",
        synced_records,
        ("entity", "king_key", "qics_id", "pending", "synced_at"),
        lambda c: c.pending.is_not(None),
        lambda c: (c.entity, c.king_key),
    ),
    "invoices_failed": ListSpec(
        "Invoices failing: not booked (or not marked), retried by every run",
        invoice_exports,
        (
            "invoice_number",
            "invoice_id",
            "invoice_date",
            "state",
            "last_error",
            "attempts",
            "first_failed_at",
            "last_failed_at",
        ),
        lambda c: _open_invoices(c) & c.last_error.is_not(None),
        lambda c: (c.invoice_id,),
    ),
    "invoices_pending": ListSpec(
        "Invoices in progress: on their way, no error",
        invoice_exports,
        ("invoice_number", "invoice_id", "invoice_date", "state", "booking_key", "note", "updated_at"),
        lambda c: _open_invoices(c) & c.last_error.is_(None),
        lambda c: (c.invoice_id,),
    ),
    "invoices_exported": ListSpec(
        "Invoices booked and marked",
        invoice_exports,
        ("invoice_number", "invoice_id", "invoice_date", "booking_key", "with_pdf", "booked_at", "marked_at"),
        lambda c: c.state == "marked",
        lambda c: (c.invoice_id.desc(),),
    ),
    "accepted": ListSpec(
        "Accepted as is: known failures, off the failing list (the maintenance DAG)",
        accepted,
        ("entity", "key", "reason", "note", "accepted_by", "accepted_at", "attempts", "first_failed_at"),
        lambda c: sa.true(),
        lambda c: (c.entity, c.key),
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
    return {
        "name": name,
        "title": spec.title,
        "columns": list(spec.columns),
        "total": total,
        "rows": rows,
        "administration": administration,
    }


def list_page(store: StateStore, administration: str, name: str, offset: int, limit: int) -> dict[str, Any]:
    with store.engine.connect() as conn:
        result = page(conn, administration, name, offset, limit)
    return {**result, "offset": offset, "limit": limit}
