"""What the DAGs' tasks run (on the worker): open the hooks and the state store, run a sync flow,
log and return its counts, fail with a table of records and reasons when any record failed.

A data error (records or invoices rejected) ends the task with that table as the last thing in
the log, without an Airflow traceback: the table is logged, then ``RecordsNotSynced`` ends the
task (see king_qics.errors). Faults of the APIs raise as they are (retried, with a traceback).
"""

from __future__ import annotations

import gc
import logging

from king_qics.errors import RecordsNotSynced
from king_qics.log_tables import paragraph, reason_table

log = logging.getLogger(__name__)


def freeze_loaded_heap() -> None:
    """Keep what is loaded now (Airflow, pandas, the hooks: a large heap of long-lived objects) out of
    the cyclic garbage collector's full scans for the rest of the task. A sync allocates per record,
    which triggers those scans often; freezing cut the client CPU of a bulk load by about 15%
    (bench/RESULTS.md). Frozen objects are still freed when unreferenced; only cycles among them
    stay until the task's process ends."""
    gc.freeze()


def administration(config_path: str, administration_id: str):
    from king_qics.config import load_administrations

    result = load_administrations(config_path)
    for adm in result.administrations:
        if adm.id == administration_id:
            return adm, result
    raise LookupError(f"administration {administration_id!r} is not (validly) configured in {config_path}")


def state_store(config):
    from king_qics.state import StateStore

    return StateStore.from_settings(getattr(config, "state_store_conn_id", None))


def publish_counts(context: dict, counts: dict) -> None:
    """Counts as XCom ``counts``, pushed before a task fails too (the return value is not)."""
    if context.get("ti") is not None:
        context["ti"].xcom_push(key="counts", value=counts)


def cleared_or_retried(context: dict) -> bool:
    """A task try after the first (a person cleared the task, or Airflow retries it): records Qics
    rejected are sent again even when they did not change."""
    ti = context.get("ti")
    return ti is not None and (getattr(ti, "try_number", 1) or 1) > 1


def sync_master_data(
    config_path: str, administration_id: str, entity: str, context: dict, pending_only: bool = False
) -> dict:
    from king_qics.hooks.king_finance import KingFinanceHook
    from king_qics.hooks.qics import QicsMilestonesHook
    from king_qics.sync.master_data import MasterDataSync

    adm, config = administration(config_path, administration_id)
    params = context.get("params") or {}
    store = state_store(config)
    ti = context.get("ti")
    freeze_loaded_heap()
    with KingFinanceHook(adm.king_conn_id) as king:
        qics = QicsMilestonesHook(adm.qics_conn_id, state_store=store)
        try:
            report = MasterDataSync(adm, king, qics, store, run_id=context.get("run_id")).run(
                entity,
                full_refresh=bool(params.get("full_refresh")) and not pending_only,
                dry_run=bool(params.get("dry_run")),
                pending_only=pending_only,
                retry_rejected=cleared_or_retried(context),
                report_as=ti.task_id if ti is not None else None,  # customer_managers: its own report
            )
        finally:
            qics.close()
    publish_counts(context, report.counts())
    text, summary = master_data_text(adm.id, report)
    if report.failed:
        log.error("%s", text)
        raise RecordsNotSynced(summary)
    if text:
        log.warning("%s", text)
    return report.counts()


def _records(count: int, entity: str, what: str = "record") -> str:
    return f"{count} {entity} {what}{'' if count == 1 else 's'}"


def master_data_text(administration_id: str, report) -> tuple[str, str]:
    """The log text of a master-data run's failed and pending records (empty without either), and
    its one-line summary."""
    parts, summary = [], ""
    if report.failed:
        summary = f"{_records(report.failed, report.entity)} of {administration_id} not synced"
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
    waiting = {key: what for key, what in report.waiting.items() if key not in report.failures}
    if waiting:
        parts.append(
            paragraph(
                f"{_records(len(waiting), report.entity)} pending: synced, a link still waits; "
                "completed by a later run as soon as it resolves."
            )
        )
        parts.append(reason_table(waiting, reason="waits for"))
    return "\n".join(parts), summary


def reconcile(config_path: str, administration_id: str, entities: list[str], context: dict) -> dict:
    """Compare King (mapped) with Qics for ``entities``; daily or with the ``reconcile`` param, else
    skipped. Reads both systems, writes to neither; stores and logs the differences."""
    from airflow.sdk.exceptions import AirflowSkipException

    from king_qics.hooks.king_finance import KingFinanceHook
    from king_qics.hooks.qics import QicsMilestonesHook
    from king_qics.state import utcnow
    from king_qics.sync.master_data import MasterDataSync
    from king_qics.sync.reconcile import reconcile_entity, reconciliation_due

    adm, config = administration(config_path, administration_id)
    params = context.get("params") or {}
    store = state_store(config)
    if not params.get("reconcile") and not reconciliation_due(store, adm.id, utcnow()):
        raise AirflowSkipException("reconciled today already; trigger with reconcile: true to run it now")
    results = {}
    with KingFinanceHook(adm.king_conn_id) as king:
        qics = QicsMilestonesHook(adm.qics_conn_id, state_store=store)
        try:
            sync = MasterDataSync(adm, king, qics, store, run_id=context.get("run_id"))
            for entity in entities:
                result = reconcile_entity(sync, entity)
                result.save(store)
                results[entity] = result.counts()
                log.info("%s %s reconciled: %s", adm.id, entity, result.counts())
                if result.differences:
                    log.warning("%s %s: Qics differs from King:\n%s", adm.id, entity, result.table())
        finally:
            qics.close()
    totals = {
        name: sum(counts[name] for counts in results.values())
        for name in next(iter(results.values()), {})
        if name != "entity"
    }
    publish_counts(context, totals)  # the totals; the return value has them per entity
    return results


def invoices_failed(administration_id: str, failures: dict[str, str], intro: str) -> RecordsNotSynced:
    """Log the table of invoices that failed; the exception that ends the task after it."""
    summary = f"{_records(len(failures), 'invoice', 'export')} of {administration_id} failed"
    log.error("%s\n%s", paragraph(f"{summary}. {intro}"), reason_table(failures, key="invoice"))
    return RecordsNotSynced(summary)


def export_invoices(config_path: str, administration_id: str, step: str, context: dict) -> dict:
    """One step of the invoice export DAG: ``select``, ``export`` or ``report``."""
    from airflow.sdk.exceptions import AirflowFailException

    from king_qics.books import refuse_shared_books
    from king_qics.hooks.king_finance import KingFinanceHook
    from king_qics.hooks.qics import QicsMilestonesHook
    from king_qics.sync.invoices import ExportReport, InvoiceExport, failure_table, ledger_summary

    adm, config = administration(config_path, administration_id)
    params = context.get("params") or {}
    dry_run = bool(params.get("dry_run"))
    store = state_store(config)
    ti = context.get("ti")
    freeze_loaded_heap()

    if step == "report":
        counts = ti.xcom_pull(task_ids="export", key="counts") if ti is not None else None
        summary = ledger_summary(store, adm.id)
        log.info("%s invoice export ledger: %s", adm.id, summary["states"])
        for number, reason in sorted(summary["waiting"].items()):
            log.info("  waiting %s: %s", number, reason)
        if counts is None:
            raise AirflowFailException(
                f"the export of administration {adm.id} did not finish (see its log); the ledger keeps "
                f"every step, so the next run (or clearing the export task) resumes where it stopped."
                + (
                    f"\nInvoices failing now:\n{failure_table(summary['failing'])}"
                    if summary["failing"]
                    else ""
                )
            )
        log.info("%s invoice export run: %s", adm.id, {k: v for k, v in counts.items() if k != "failures"})
        if counts.get("failed"):
            raise invoices_failed(adm.id, counts["failures"], "They were not exported (the others were).")
        return {"run": counts, "ledger": summary}

    qics = QicsMilestonesHook(adm.qics_conn_id, state_store=store)
    try:
        if step == "select":
            report = ExportReport(adm.id, dry_run=dry_run)
            snapshots = InvoiceExport(adm, None, qics, store, run_id=context.get("run_id")).select_from_qics(
                dry_run=dry_run, report=report
            )
            return {
                "candidates": sorted(int(s["InvoiceHeaderId"]) for s in snapshots),
                "skipped": report.skipped,
                "dry_run": dry_run,
            }
        refuse_shared_books(adm, config.administrations)
        selected = ti.xcom_pull(task_ids="select") if ti is not None else None
        candidates = set(selected["candidates"]) if selected else None
        with KingFinanceHook(adm.king_conn_id) as king:
            export = InvoiceExport(adm, king, qics, store, run_id=context.get("run_id"))
            report = ExportReport(adm.id, dry_run=dry_run, skipped=(selected or {}).get("skipped", 0))
            report = export.export(dry_run=dry_run, report=report, candidate_ids=candidates)
    finally:
        qics.close()
    counts = report.counts()
    publish_counts(context, counts)
    if report.failed:
        raise invoices_failed(
            adm.id,
            report.failures,
            "They were not exported (the others were). Every following run retries them; clearing "
            "this task retries them now.",
        )
    return counts


def preflight(config_path: str, administration_id: str, context: dict) -> dict:
    """The go-live checks of one administration (king_qics.preflight); skipped when the run's
    ``administration`` param names another one. Fails (the table is the log) when a check that
    would stop the sync differs."""
    from airflow.sdk.exceptions import AirflowSkipException

    from king_qics.preflight import failed, table
    from king_qics.preflight.run import preflight as run_preflight

    params = context.get("params") or {}
    if params.get("administration", "all") not in ("all", administration_id):
        raise AirflowSkipException(f"this run checks {params.get('administration')!r}")
    adm, config = administration(config_path, administration_id)
    journal = params.get("journal") if params.get("write_probe") else None
    if params.get("write_probe") and journal in (None, ""):
        raise RecordsNotSynced("write_probe needs a test journal: set the journal param (DAGBOEK.NR)")
    checks = run_preflight(adm, config, probe_journal=int(journal) if journal not in (None, "") else None)
    log.info("%s preflight:\n%s", adm.id, table(checks))
    stopping = failed(checks)
    publish_counts(context, {"checks": len(checks), "would_stop_the_sync": len(stopping)})
    if stopping:
        names = ", ".join(f"{c.api} {c.name}" for c in stopping)
        raise RecordsNotSynced(f"{len(stopping)} preflight check(s) of {adm.id} would stop the sync: {names}")
    return {"checks": [check.__dict__ for check in checks]}
