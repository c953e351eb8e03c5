"""Idle cycles in real Airflow (dag.test(), real HTTP to both sandboxes): a master-data or invoice-
export run that finds nothing runs only its first task (the others are skipped: no task process),
makes no Qics call (master data) or one Qics page (invoices) and at most one King read per table;
a change in King or a new processed invoice runs the rest again."""

from __future__ import annotations

import logging

from king_qics.hooks.king import KingFinanceHook
from tests.king_records import create_record, update_record

MASTER_DATA = "king_qics__noord__master_data"
PROJECTS_EMPLOYEES = "king_qics__noord__projects_employees"
INVOICE_EXPORT = "king_qics__noord__invoice_export"
ENTITY_TASKS = {"vat_codes", "payment_conditions", "cost_centers", "items", "customers"}
KING_TABLES = 5  # BTW, BETCOND, KPL, ART, DEB: one per entity of the master-data DAG
SESSION = {"Login", "Logout", "KeepSession"}
DEBTORS = 100  # the invoices' customers


def king_hook() -> KingFinanceHook:
    return KingFinanceHook("king_noord", timeout=5)


def ran(states: dict) -> set[str]:
    """The task instances that started a task process (not skipped)."""
    return {task for task, state in states.items() if state != "skipped"}


def settled_master_data(run_dag):
    """The demo synced until nothing fails or waits: debtor 10006's payment condition created in King,
    the employees synced (10005's manager link), and the master data run once more."""
    run_dag(MASTER_DATA)
    with king_hook() as king:
        create_record(king, "BETCOND", {"NR": 9, "ZKSL": "60 dagen netto", "VERVDGN": 60})
    run_dag(PROJECTS_EMPLOYEES)
    _, states = run_dag(MASTER_DATA)
    assert states["customers"] == "success", states


def test_an_idle_master_data_run_runs_only_its_gate(run_dag, sandbox, state_store, caplog, capsys):
    settled_master_data(run_dag)
    # the run after the one that synced: King unchanged, the gate's fingerprints stored
    sandbox.reset_calls()
    with caplog.at_level(logging.INFO):
        dag_run, states = run_dag(MASTER_DATA)
    assert states == {"check_king": "success", **dict.fromkeys(ENTITY_TASKS | {"reconcile"}, "skipped")}
    assert str(dag_run.state) == "success"
    assert sandbox.calls("qics") == {}
    king_calls = sandbox.calls("king")
    assert king_calls.get("GetStamtabelRecords", 0) <= KING_TABLES
    assert set(king_calls) <= SESSION | {"GetStamtabelRecords"}, king_calls
    assert "NOTHING TO DO" in caplog.text + capsys.readouterr().out and "skipped" in caplog.text

    # a change in King runs the entity tasks again (and writes just that change)
    with king_hook() as king:
        update_record(king, "DEB", "NR", 10002, {"EMAIL": "weer@energiebos.nl"})
    sandbox.reset_calls()
    _, states = run_dag(MASTER_DATA)
    assert ran(states) == {"check_king"} | ENTITY_TASKS and states["reconcile"] == "skipped"
    assert {op: n for op, n in sandbox.calls("qics").items() if op.startswith("PUT")} == {
        "PUT CustomerCompany": 1
    }

    # and once that is synced, the next run is idle again
    sandbox.reset_calls()
    _, states = run_dag(MASTER_DATA)
    assert ran(states) == {"check_king"}
    assert sandbox.calls("qics") == {}


def test_failing_records_keep_the_master_data_run_going(run_dag, sandbox, state_store):
    run_dag(MASTER_DATA)  # debtor 10006 fails by design (payment condition 9 is not in King)
    sandbox.reset_calls()
    _, states = run_dag(MASTER_DATA)
    assert ENTITY_TASKS <= ran(states)
    king_calls = sandbox.calls("king")
    assert "GetStamtabelRecords" in king_calls  # the sync's own reads: the gate decided from the store


def test_a_trigger_param_asking_for_work_runs_the_entity_tasks(run_dag, sandbox, state_store):
    settled_master_data(run_dag)
    _, states = run_dag(MASTER_DATA, full_refresh=True)
    assert ENTITY_TASKS <= ran(states)


def invoice_fixture(tmp_path, count: int, concept: set[int]) -> dict:
    """``count`` generated processed invoices with their PDFs; the ``concept`` ones (by position,
    1 = the lowest InvoiceHeaderId) not processed yet."""
    from sandbox.king.generate import generate_section as king_section
    from sandbox.qics.generate import generate_section as qics_section

    qics = qics_section(DEBTORS, seed=3, invoices=count)
    invoices = sorted(qics["entities"]["Invoice"], key=lambda i: int(i["InvoiceHeaderId"]))
    for position, invoice in enumerate(invoices, start=1):
        invoice["InvoiceHeaderState"] = "Concept" if position in concept else "Processed"
        invoice["IsWrittenOff"] = False
    pdf_dir = tmp_path / "pdfs"
    pdf_dir.mkdir(exist_ok=True)
    for key, content in qics["invoice_pdfs"].items():
        (pdf_dir / f"{key}.pdf").write_bytes(content)
    qics["invoice_pdfs"] = {key: f"pdfs/{key}.pdf" for key in qics["invoice_pdfs"]}
    return {"king": king_section(DEBTORS, seed=3), "qics": qics, "_base_dir": str(tmp_path)}, invoices


def reload_qics(sandbox, state_store, fixture: dict) -> None:
    """Reload the sandboxes (the invoice states changed in Qics's own screens): the reloaded Qics
    knows no token of the earlier chain, so the store's chain starts again from the connection's."""
    import sqlalchemy as sa

    from king_qics.hooks.qics.oauth import clear_process_cache
    from king_qics.state import oauth_tokens

    sandbox.load(fixture)
    with state_store.transaction() as conn:
        conn.execute(sa.delete(oauth_tokens))
    clear_process_cache()


def test_an_idle_invoice_export_reads_one_qics_page_and_skips_export_and_report(
    run_dag, sandbox, state_store, caplog, capsys, tmp_path
):
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from king_qics.state import InvoiceLedger
    from king_qics.state.tables import invoice_watermarks

    count = 1_001
    fixture, invoices = invoice_fixture(tmp_path, count, concept={10, count})
    late, newest = int(invoices[9]["InvoiceHeaderId"]), int(invoices[-1]["InvoiceHeaderId"])
    sandbox.load(fixture)
    _, states = run_dag(INVOICE_EXPORT)
    assert states == {"select": "success", "export": "success", "report": "success"}
    ledger = InvoiceLedger(state_store, "noord")
    assert len(ledger.states()) == count - 2 and set(ledger.states().values()) == {"marked"}

    # 999 invoices exported: an idle run reads one page of Qics and skips export and report
    sandbox.reset_calls()
    with caplog.at_level(logging.INFO):
        dag_run, states = run_dag(INVOICE_EXPORT)
    assert states == {"select": "success", "export": "skipped", "report": "skipped"}
    assert str(dag_run.state) == "success"
    assert sandbox.calls("qics") == {"GET Invoice": 1}
    assert sandbox.calls("king") == {}
    assert "NOTHING TO DO" in caplog.text + capsys.readouterr().out

    # a newly processed invoice is found by the next (incremental) run and exported
    invoices[-1]["InvoiceHeaderState"] = "Processed"
    invoices[9]["InvoiceHeaderState"] = "Processed"  # an old concept, processed only now
    reload_qics(sandbox, state_store, fixture)
    sandbox.reset_calls()
    _, states = run_dag(INVOICE_EXPORT)
    assert ran(states) == {"select", "export", "report"}
    assert ledger.states()[newest] == "marked"
    assert sandbox.calls("qics")["GET Invoice"] == 1
    # the old concept processed late is below the watermark: the daily full pass finds it
    assert late not in ledger.states()
    with state_store.transaction() as conn:
        conn.execute(sa.update(invoice_watermarks).values(last_full_read_at=datetime(2026, 1, 1, tzinfo=UTC)))
    sandbox.reset_calls()
    _, states = run_dag(INVOICE_EXPORT)
    assert ledger.states()[late] == "marked"
    assert sandbox.calls("qics")["GET Invoice"] >= 10  # every processed invoice since the cutoff
