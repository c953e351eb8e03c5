"""What a person reads in a task's log after a data error (real Airflow via dag.test(), real HTTP
to the sandboxes): the reason table is the message, with the pending records named too, in lines
that fit a normal log width, and the task ends without an Airflow traceback after it (one line,
"Task exited", and no retry: the same data gives the same answer)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from king_qics.log_tables import LOG_WIDTH

ROOT = Path(__file__).resolve().parents[2]
MASTER_DATA = "king_qics__noord__master_data"
INVOICE_EXPORT = "king_qics__noord__invoice_export"
DEMO = json.loads((ROOT / "sandbox" / "fixtures" / "demo.json").read_text(encoding="utf-8"))


def task_errors(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("king_qics.tasks") and r.levelno >= logging.ERROR
    ]


def assert_ends_without_traceback(output: str, runs: int = 1) -> None:
    assert output.count("Task exited") == runs and "action=fail" in output
    assert "Traceback" not in output and "Task failed with exception" not in output
    assert "RecordsNotSynced" not in output and "AirflowFailException" not in output


def test_a_data_error_ends_the_task_with_its_table_and_no_traceback(run_dag, sandbox, caplog, capfd):
    caplog.set_level(logging.INFO, logger="king_qics")
    dag_run, states = run_dag(MASTER_DATA)
    assert states["customers"] == "failed"
    customers = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "customers")
    assert customers.try_number == 1  # not retried
    assert_ends_without_traceback(capfd.readouterr().out)

    (text,) = task_errors(caplog)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= LOG_WIDTH, text
    assert lines[0].startswith("1 customers record of noord not synced; the others were (new ")
    table = lines[lines.index("key    reason") :]
    assert table[1] == "-----  ------"
    assert table[2].startswith("10006  PaymentConditionId: King BETCOND 9 does not exist in King")
    assert "or add record 9 to King's BETCOND" in " ".join(line.strip() for line in table)
    # the pending record is named too: debtor 10005 waits for its manager (employees never synced)
    pending = lines[lines.index("key    waits for") :]
    assert pending[2].startswith("10005  ManagerEmployeeCompanyId: King MEDEWDEC SDEVRIES is not synced")
    assert "employees were never synced" in " ".join(line.strip() for line in pending)


def test_a_code_whose_own_sync_failed_is_told_apart_from_one_king_does_not_have(run_dag, sandbox, caplog):
    """Payment condition 9 exists in King but cannot be synced itself (no payment term): debtor
    10006 then fails for that, not for a code that does not exist."""
    fixture = json.loads(json.dumps(DEMO))
    fixture["_base_dir"] = str(ROOT / "sandbox" / "fixtures")
    fixture["king"]["administrations"][0]["tables"]["BETCOND"].append({"NR": 9, "ZKSL": "Zonder termijn"})
    sandbox.load(fixture)
    caplog.set_level(logging.INFO, logger="king_qics")
    _, states = run_dag(MASTER_DATA)
    assert states["payment_conditions"] == "failed" and states["customers"] == "failed"
    conditions, customers = task_errors(caplog)
    assert "\n9    PaymentTerm: empty (King VERVDGN)" in conditions
    flat = " ".join(line.strip() for line in customers.splitlines())
    assert "King BETCOND 9 exists in King, but its own sync failed (payment_conditions 9: PaymentTerm" in flat
    assert "does not exist" not in flat


def test_an_invoice_data_error_ends_the_task_with_its_table_and_no_traceback(run_dag, sandbox, caplog, capfd):
    caplog.set_level(logging.INFO, logger="king_qics")
    _, states = run_dag(INVOICE_EXPORT)
    assert states["export"] == "failed" and states["report"] == "failed"  # N2026005, by design
    assert_ends_without_traceback(capfd.readouterr().out, runs=2)
    export, report = task_errors(caplog)
    for text in (export, report):
        lines = text.splitlines()
        assert max(len(line) for line in lines) <= LOG_WIDTH, text
        assert lines[0].startswith("1 invoice export of noord failed.")
        table = lines[lines.index("invoice   reason") :]
        assert table[2].startswith("N2026005  ")


def test_the_invoice_report_reads_as_sentences_in_the_ledger_s_words(run_dag, sandbox, caplog):
    """Issue 18: counts as words, not Python dicts, and the run's figure ("worked on") is not named
    like the ledger state ("selected", shown as "waiting to be booked")."""
    caplog.set_level(logging.INFO, logger="king_qics")
    run_dag(INVOICE_EXPORT)
    report = [r.getMessage() for r in caplog.records if r.name == "king_qics.tasks.invoices"]
    ledger = next(text for text in report if "invoice export ledger:" in text)
    run = next(text for text in report if "invoice export run:" in text)
    assert ledger == (
        "noord invoice export ledger: 2 waiting to be booked, 3 booked and marked, 1 skipped"
    ), ledger
    assert run == (
        "noord invoice export run: worked on 5 invoices: booked 3, found booked in King already 0, "
        "marked exported in Qics 3, waiting 1, failed 1; skipped 1 (fully written off, or nothing to book)"
    ), run
    assert not any("{" in text or "selected" in text for text in report), report
