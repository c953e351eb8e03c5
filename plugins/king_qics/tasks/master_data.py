"""The master-data tasks: one entity's sync, and the reconciliation."""

from __future__ import annotations

import logging

from king_qics.errors import RecordsNotSynced
from king_qics.log_tables import paragraph, reason_table
from king_qics.tasks import (
    administration,
    apis,
    cleared_or_retried,
    freeze_loaded_heap,
    publish_counts,
    records,
    state_store,
)

log = logging.getLogger(__name__)


def sync_master_data(
    config_path: str, administration_id: str, entity: str, pending_only: bool = False, **context
) -> dict:
    """One entity (``pending_only``: only the records whose optional links wait)."""
    from king_qics.sync.master_data import MasterDataSync

    adm, config = administration(config_path, administration_id)
    params = context.get("params") or {}
    keys = requested_keys(params)
    if keys is not None and (pending_only or entity not in keys):
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"on demand: this run syncs only {on_demand_text(keys)}")
    store = state_store(config)
    ti = context.get("ti")
    freeze_loaded_heap()
    with apis(adm, store) as (king, qics):
        report = MasterDataSync(adm, king, qics, store, run_id=context.get("run_id")).run(
            entity,
            full_refresh=bool(params.get("full_refresh")) and not pending_only,
            dry_run=bool(params.get("dry_run")),
            pending_only=pending_only,
            retry_rejected=cleared_or_retried(context),
            report_as=ti.task_id if ti is not None else None,  # customer_managers: its own report
            keys=keys[entity] if keys is not None else None,
        )
    publish_counts(context, report.counts())
    if report.outcomes is not None:
        return on_demand_result(adm.id, report)
    if ti is not None and not pending_only and not params.get("dry_run"):
        _gate_read_synced(adm, store, entity, ti)
    text, summary = master_data_text(adm.id, report)
    if report.failed:
        log.error("%s", text)
        raise RecordsNotSynced(summary)
    if text:
        log.warning("%s", text)
    return report.counts()


def requested_keys(params: dict) -> dict[str, list[str]] | None:
    """The ``keys`` param (entity -> King keys) without empty entries; None: a normal run."""
    keys = {
        entity: [str(key).strip() for key in values if str(key).strip()]
        for entity, values in (params.get("keys") or {}).items()
    }
    keys = {entity: values for entity, values in keys.items() if values}
    return keys or None


def on_demand_text(keys: dict[str, list[str]]) -> str:
    return "; ".join(f"{entity} {', '.join(values)}" for entity, values in sorted(keys.items()))


def on_demand_result(administration_id: str, report) -> dict:
    """Log what happened to each key named; fail when one failed or King does not have it."""
    table = reason_table(report.outcomes, key=f"{report.entity} key", reason="what happened")
    missed = {
        key: outcome
        for key, outcome in report.outcomes.items()
        if outcome.startswith(("failed", "not found", "read from King"))
    }
    text = f"{administration_id} {report.entity} on demand ({len(report.outcomes)} named):\n{table}"
    if missed:
        log.error("%s", text)
        summary = f"{records(len(missed), report.entity)} of {administration_id} not synced on demand"
        raise RecordsNotSynced(summary)
    log.info("%s", text)
    return {**report.counts(), "keys": report.outcomes}


def _gate_read_synced(adm, store, entity: str, ti) -> None:
    """What this run's gate read of the entity's King table is synced now (king_qics.sync.gate)."""
    from king_qics.catalog import GATE_TASK
    from king_qics.mapping import load_mapping
    from king_qics.sync.gate import store_synced_fingerprint

    if GATE_TASK in ti.task.dag.task_ids:
        table = load_mapping(entity).king_table_for(adm)
        store_synced_fingerprint(store, adm.id, ti.xcom_pull(task_ids=GATE_TASK), table)


def master_data_text(administration_id: str, report) -> tuple[str, str]:
    """The log text of a master-data run's failed and pending records (empty without either), and
    its one-line summary."""
    parts, summary = [], ""
    if report.failed:
        summary = f"{records(report.failed, report.entity)} of {administration_id} not synced"
        done = f"new {report.new}, changed {report.changed}, unchanged {report.unchanged}"
        parts.append(
            paragraph(
                f"{summary}; the others were ({done}). Every run retries "
                f"{'it' if report.failed == 1 else 'them'}; clearing this task retries "
                f"{'it' if report.failed == 1 else 'them'} now. Fix the data (in King, or what the "
                "reason names), and the next run picks it up."
            )
        )
        parts.append(reason_table(report.failures))
    if report.accepted:
        parts.append(
            paragraph(
                f"{records(len(report.accepted), report.entity)} failing as accepted as is (not counted, "
                "not on the failing list; listed again when it fails for another reason):"
            )
        )
        parts.append(reason_table(report.accepted))
    waiting = {key: what for key, what in report.waiting.items() if key not in report.failures}
    if waiting:
        parts.append(
            paragraph(
                f"{records(len(waiting), report.entity)} pending: synced, a link still waits; "
                "completed by a later run as soon as it resolves."
            )
        )
        parts.append(reason_table(waiting, reason="waits for"))
    return "\n".join(parts), summary


def reconcile(config_path: str, administration_id: str, entities: list[str], **context) -> dict:
    """Compare King (mapped) with Qics for ``entities``; daily or with the ``reconcile`` param, else
    skipped. Reads both systems, writes to neither; stores and logs the differences."""
    from airflow.sdk.exceptions import AirflowSkipException

    from king_qics.state import utcnow
    from king_qics.sync.due import reconciliation_due
    from king_qics.sync.master_data import MasterDataSync
    from king_qics.sync.reconcile import reconcile_entity

    adm, config = administration(config_path, administration_id)
    params = context.get("params") or {}
    store = state_store(config)
    keys = requested_keys(params)
    if keys is not None and not params.get("reconcile"):
        raise AirflowSkipException(f"on demand: this run syncs only {on_demand_text(keys)}")
    if not params.get("reconcile") and not reconciliation_due(store, adm.id, utcnow()):
        raise AirflowSkipException("reconciled today already; trigger with reconcile: true to run it now")
    results = {}
    with apis(adm, store) as (king, qics):
        sync = MasterDataSync(adm, king, qics, store, run_id=context.get("run_id"))
        for entity in entities:
            result = reconcile_entity(sync, entity)
            result.save(store)
            results[entity] = result.counts()
            log.info("%s %s reconciled: %s", adm.id, entity, result.counts())
            if result.differences:
                log.warning("%s %s: Qics differs from King:\n%s", adm.id, entity, result.table())
    totals = {
        name: sum(counts[name] for counts in results.values())
        for name in next(iter(results.values()), {})
        if name != "entity"
    }
    publish_counts(context, totals)  # the totals; the return value has them per entity
    return results
