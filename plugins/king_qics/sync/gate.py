"""Whether a master-data run has anything to do, asked cheaply before its entity tasks start.

Reasons to run, from the state store: a trigger param asking for work, a table never read in full
or due for the daily full read, the daily reconciliation, records failing or pending. And from King,
one GetStamtabelRecords per table: the rows changed since the watermark's
day (King's MUTDATE_VA takes a date, so the rows synced earlier that day come back too). Their
fingerprint is compared with the one the entity task stored after it synced them
(``KingChangeChecks``); equal means nothing changed since. Qics is never called.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime

import pendulum

from king_qics import catalog
from king_qics.catalog import TIMEZONE
from king_qics.state import KingChangeChecks, StateStore, SyncedRecords, Watermarks

log = logging.getLogger(__name__)

# The trigger params that always ask for a run (a missing param counts as unset).
WORK_PARAMS = ("full_refresh", "reconcile", "keys", "invoices")


@dataclass
class GateVerdict:
    reasons: list[str] = field(default_factory=list)  # why the run has work (empty: idle)
    unchanged: list[str] = field(default_factory=list)  # the tables King reported unchanged
    # per King table: [since day (ISO), fingerprint] of the rows the gate read, for the entity
    # task to store once it synced them
    fingerprints: dict[str, list[str]] = field(default_factory=dict)

    def xcom(self) -> dict:
        return {"reasons": self.reasons, "fingerprints": self.fingerprints}


def param_reasons(params: dict) -> list[str]:
    return [f"trigger param {name}" for name in WORK_PARAMS if params.get(name)]


def entity_tables(adm, kind: catalog.DagKind) -> dict[str, tuple[str, list[str], str]]:
    """The entities a DAG syncs -> (King table, fields read, key field), from their mappings."""
    from king_qics.mapping import load_mapping

    tables = {}
    for entity in catalog.entities_of(kind):
        mapping = load_mapping(entity.name)
        tables[entity.name] = (mapping.king_table_for(adm), mapping.king_fields, mapping.king_key)
    return tables


def store_reasons(adm, store: StateStore, kind: catalog.DagKind, tables: dict, now: datetime) -> list[str]:
    """Reasons to run that the state store knows, without any API call."""
    from king_qics.sync.due import full_read_reason, reconciliation_due

    reasons = []
    watermarks = Watermarks(store, adm.id)
    # the customers' manager links (projects/employees DAG: customer_managers) wait there too
    pending_only = ["customers"] if kind == catalog.DagKind.PROJECTS_EMPLOYEES else []
    for entity, (table, _, _) in tables.items():
        records = SyncedRecords(store, adm.id, entity)
        failing, pending = records.failing(), records.pending()
        reason = full_read_reason(watermarks.get(table), now, False, len(failing))
        if reason:
            reasons.append(f"{entity} ({table}): {reason}")
        if failing:
            reasons.append(f"{entity}: {len(failing)} failing record(s) to retry")
        if pending:
            reasons.append(f"{entity}: {len(pending)} pending record(s)")
    for entity in pending_only:
        pending = SyncedRecords(store, adm.id, entity).pending()
        if pending:
            reasons.append(f"{entity}: {len(pending)} record(s) waiting for a link")
    if kind == catalog.DagKind.MASTER_DATA and reconciliation_due(store, adm.id, now):
        reasons.append("the daily reconciliation is due")
    return reasons


def fingerprint(rows: list[dict]) -> str:
    texts = sorted(json.dumps(row, sort_keys=True) for row in rows)
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()


def king_reasons(adm, king, store: StateStore, tables: dict, verdict: GateVerdict, now: datetime) -> None:
    """One King read per table: the rows changed since the watermark's day (a table never synced:
    since today, the day its first watermark will have), against the fingerprint stored when they
    were synced."""
    from king_qics.hooks.king.query import TableQuery
    from king_qics.sync.due import WATERMARK_OVERLAP

    watermarks = Watermarks(store, adm.id)
    checks = KingChangeChecks(store, adm.id).all()
    for entity, (table, fields, _) in tables.items():
        watermark = watermarks.get(table)
        read_until = watermark.read_until if watermark is not None else now
        since = pendulum.instance(read_until - WATERMARK_OVERLAP).in_timezone(TIMEZONE).date()
        query = TableQuery.of(table, fields, changed_since=since)
        rows, _, pages = king.read_page(query, 1, king.page_size)
        if pages > 1:
            verdict.reasons.append(
                f"{entity} ({table}): more than {king.page_size} rows changed since {since}"
            )
            continue
        digest = fingerprint(rows)
        verdict.fingerprints[table] = [since.isoformat(), digest]
        known = checks.get(table)
        if known is None or known.since_day != since or known.fingerprint != digest:
            verdict.reasons.append(f"{entity} ({table}): {len(rows)} row(s) changed in King since {since}")
        else:
            verdict.unchanged.append(table)


def check(
    adm, store: StateStore, kind: catalog.DagKind, params: dict, now: datetime, open_king
) -> GateVerdict:
    """The gate's verdict; ``open_king()`` opens the King hook. King is read even when the store
    already gives a reason (a failing record, the daily full read): the entity tasks store what it
    read once synced, so the run after them can be found idle."""
    tables = entity_tables(adm, kind)
    verdict = GateVerdict(reasons=param_reasons(params) + store_reasons(adm, store, kind, tables, now))
    with open_king() as king:
        king_reasons(adm, king, store, tables, verdict, now)
    return verdict


def store_synced_fingerprint(
    store: StateStore, administration: str, gate_xcom: dict | None, table: str
) -> None:
    """After an entity task synced its table: what the gate read is synced (the rows can only have
    changed since, which the next gate sees as a change)."""
    mark = ((gate_xcom or {}).get("fingerprints") or {}).get(table)
    if mark:
        KingChangeChecks(store, administration).synced(table, pendulum.parse(mark[0]).date(), mark[1])
