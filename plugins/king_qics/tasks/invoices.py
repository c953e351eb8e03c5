"""The invoice export DAG's tasks: ``select`` (processed invoices into the ledger), ``export`` (work
every open invoice through the ledger's states) and ``report`` (the run and the ledger's backlog)."""

from __future__ import annotations

import logging

from king_qics.errors import RecordsNotSynced
from king_qics.log_tables import paragraph, reason_table
from king_qics.tasks import administration, apis, freeze_loaded_heap, publish_counts, records, state_store

log = logging.getLogger(__name__)


def select_invoices(config_path: str, administration_id: str, **context) -> dict:
    """Record the processed Qics invoices new since the cutoff in the export ledger; the ids of the
    processed invoices (the export books no ``selected`` invoice outside them) are the XCom. The DAG's
    gate: nothing new, nothing open in the ledger and no param asking for work returns {} (the run
    has nothing to do; export and report are skipped)."""
    from king_qics.state import EXPORT_OPEN_STATES, InvoiceLedger
    from king_qics.sync.gate import param_reasons
    from king_qics.sync.invoices import ExportReport, InvoiceExport

    adm, config = administration(config_path, administration_id)
    params = context.get("params") or {}
    dry_run = _dry_run(context)
    store = state_store(config)
    freeze_loaded_heap()
    report = ExportReport(adm.id, dry_run=dry_run)
    with apis(adm, store, king=False) as (_, qics):
        export = InvoiceExport(adm, None, qics, store, run_id=context.get("run_id"))
        snapshots = export.select_from_qics(
            dry_run=dry_run,
            report=report,
            full_refresh=bool(params.get("full_refresh")),
            numbers=requested(context),
        )
    open_invoices = len(InvoiceLedger(store, adm.id).rows(EXPORT_OPEN_STATES))
    if not (snapshots or report.skipped or open_invoices or dry_run or param_reasons(params)):
        log.info(
            "%s: NOTHING TO DO. No new processed invoice in Qics and none open in the ledger; export "
            "and report are skipped.",
            adm.id,
        )
        return {}
    return {
        "candidates": sorted(int(s["InvoiceHeaderId"]) for s in snapshots),
        "skipped": report.skipped,
        "dry_run": dry_run,
    }


def export_invoices(config_path: str, administration_id: str, **context) -> dict:
    """Book, attach and mark every open invoice of the ledger; fails at the end with the table of the
    invoices that failed (the others are exported)."""
    from king_qics.books import refuse_shared_books
    from king_qics.sync.invoices import ExportReport, InvoiceExport

    adm, config = administration(config_path, administration_id)
    dry_run = _dry_run(context)
    store = state_store(config)
    ti = context.get("ti")
    freeze_loaded_heap()
    refuse_shared_books(adm, config.administrations)
    selected = ti.xcom_pull(task_ids="select") if ti is not None else None
    candidates = set(selected["candidates"]) if selected else None
    report = ExportReport(adm.id, dry_run=dry_run, skipped=(selected or {}).get("skipped", 0))
    with apis(adm, store) as (king, qics):
        export = InvoiceExport(adm, king, qics, store, run_id=context.get("run_id"))
        numbers = requested(context)
        if numbers is not None:
            log.info("%s on demand: only invoices %s, now", adm.id, ", ".join(sorted(numbers)))
        report = export.export(dry_run=dry_run, report=report, candidate_ids=candidates, numbers=numbers)
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


def report_invoices(config_path: str, administration_id: str, **context) -> dict:
    """The export run's counts and the ledger's backlog (every invoice per state, the failing and the
    waiting ones); fails when the export did not finish or some invoices failed."""
    from airflow.sdk.exceptions import AirflowFailException

    from king_qics.sync.invoices import ledger_sentence, ledger_summary, run_sentence

    adm, config = administration(config_path, administration_id)
    ti = context.get("ti")
    counts = ti.xcom_pull(task_ids="export", key="counts") if ti is not None else None
    summary = ledger_summary(state_store(config), adm.id)
    log.info("%s invoice export ledger: %s", adm.id, ledger_sentence(summary["states"]))
    if summary["waiting"]:
        log.info("Waiting:\n%s", reason_table(summary["waiting"], key="invoice", reason="waits for"))
    if counts is None:
        failing = f"\nInvoices failing now:\n{reason_table(summary['failing'], key='invoice')}"
        raise AirflowFailException(
            f"the export of administration {adm.id} did not finish (see its log); the ledger keeps "
            "every step, so the next run (or clearing the export task) resumes where it stopped."
            + (failing if summary["failing"] else "")
        )
    log.info("%s invoice export run: %s", adm.id, run_sentence(counts))
    if counts.get("failed"):
        raise invoices_failed(adm.id, counts["failures"], "They were not exported (the others were).")
    return {"run": counts, "ledger": summary}


def invoices_failed(administration_id: str, failures: dict[str, str], intro: str) -> RecordsNotSynced:
    """Log the table of invoices that failed; the exception that ends the task after it."""
    summary = f"{records(len(failures), 'invoice', 'export')} of {administration_id} failed"
    log.error("%s\n%s", paragraph(f"{summary}. {intro}"), reason_table(failures, key="invoice"))
    return RecordsNotSynced(summary)


def requested(context: dict) -> set[str] | None:
    """The ``invoices`` param (Qics invoice numbers to retry now); None: a normal run."""
    numbers = {str(n).strip() for n in (context.get("params") or {}).get("invoices") or [] if str(n).strip()}
    return numbers or None


def _dry_run(context: dict) -> bool:
    return bool((context.get("params") or {}).get("dry_run"))
