"""The invoice export DAG in real Airflow (dag.test()), real HTTP to both sandboxes, faults on."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest

from king_qics.state import InvoiceLedger

DAG_ID = "king_qics__noord__invoice_export"


def test_dag_shape(dagbag):
    dag = dagbag.dags[DAG_ID]
    assert [t.task_id for t in dag.topological_sort()] == ["select", "export", "report"]
    assert dag.max_active_runs == 1 and not dag.catchup
    assert {"administration:noord", "direction:qics->king"} <= set(dag.tags)
    assert dag.get_task("export").pool == "king_qics__noord__king"
    assert set(dag.params) >= {"dry_run", "full_refresh"}


def test_demo_run(run_dag, sandbox, state_store):
    dag_run, states = run_dag(DAG_ID)
    # the unknown debtor fails the export (after the batch) and the report; the rest is booked
    assert states == {"select": "success", "export": "failed", "report": "failed"}
    assert str(dag_run.state) == "failed"
    ledger = InvoiceLedger(state_store, "noord")
    assert ledger.states() == {
        1: "marked",
        2: "marked",
        3: "marked",
        4: "skipped",
        5: "selected",
        6: "selected",
    }
    assert "debtor 19999" in ledger.get(6).last_error
    king = sandbox.state("king")["administrations"][0]
    assert {row["FACT"] for row in king["tables"]["BOE"]} == {"N2026001", "N2026002", "N2026003"}


def test_dry_run_posts_nothing(run_dag, sandbox, state_store):
    dag_run, states = run_dag(DAG_ID, dry_run=True)
    assert states["select"] == "success"
    assert "CreateJournaalpost" not in sandbox.calls("king")
    assert InvoiceLedger(state_store, "noord").states() == {}
    assert not sandbox.state("qics")["entities"].get("EntityState")


# -- 200 invoices, faults on, one run killed between booking and marking ---------------------------


def big_fixture(tmp_path, seed=7):
    """200 generated invoices: credit notes, written-off, missing PDFs, unknown debtors mixed in."""
    from sandbox.king.generate import generate_section as king_section
    from sandbox.qics.generate import generate_section as qics_section

    qics = qics_section(200, seed=seed, invoices=200)
    rng = random.Random(seed)
    invoices = qics["entities"]["Invoice"]
    lines = defaultdict(list)
    for line in qics["entities"]["OverviewInvoiceLine"]:
        lines[line["InvoiceHeaderId"]].append(line)
    ids = [i["InvoiceHeaderId"] for i in invoices]
    rng.shuffle(ids)
    credit, written_off, no_pdf = set(ids[:15]), set(ids[15:25]), set(ids[25:35])
    for invoice in invoices:
        hid = invoice["InvoiceHeaderId"]
        if hid in credit:
            invoice["InvoiceHeaderType"] = "CreditNote"
            for name in ("TotalAmountExclVat", "TotalVatAmount", "TotalAmountInclVat"):
                invoice[name] = str(-Decimal(invoice[name]))
            for line in lines[hid]:
                for name in ("Quantity", "AmountExclVat", "VatAmount"):
                    line[name] = str(-Decimal(line[name]))
        if hid in written_off:
            invoice["IsWrittenOff"] = True
    pdf_dir = tmp_path / "pdfs"
    pdf_dir.mkdir()
    pdfs = {}
    for key, content in qics["invoice_pdfs"].items():
        if key not in no_pdf:
            (pdf_dir / f"{key}.pdf").write_bytes(content)
            pdfs[key] = f"pdfs/{key}.pdf"
    qics["invoice_pdfs"] = pdfs
    king = king_section(190, seed=seed)  # debtors 10000..10189: customers 10190..10199 are unknown
    customers = {c["CustomerCompanyId"]: c["CustomerCode"] for c in qics["entities"]["CustomerCompany"]}
    unknown = {i["InvoiceHeaderId"] for i in invoices if int(customers[i["CustomerCompanyId"]]) >= 10190}
    fixture = {"king": king, "qics": qics, "_base_dir": str(tmp_path)}
    exportable = {
        i["InvoiceNumber"]: i for i in invoices if i["InvoiceHeaderId"] not in written_off | no_pdf | unknown
    }
    failing = unknown - written_off
    return fixture, exportable, {i["InvoiceNumber"] for i in invoices if i["InvoiceHeaderId"] in failing}


FAULTS_KING = [
    {"kind": "drop_after_commit", "probability": 0.1, "operations": ["CreateJournaalpost"]},
    {"kind": "http_500", "probability": 0.03},
    {"kind": "http_429", "probability": 0.03, "retry_after": 0.01},
    {"kind": "expire_session", "probability": 0.02},
]
FAULTS_QICS = [
    {"kind": "http_500", "probability": 0.03},
    {"kind": "http_429", "probability": 0.03, "retry_after": 0.01},
    {"kind": "expire_session", "probability": 0.02},
    {"kind": "drop_after_commit", "probability": 0.05, "operations": ["POST EntityState"]},
]


@pytest.fixture
def fast_connections(connections, monkeypatch):
    import os

    for conn_id in ("KING_NOORD", "QICS_SANDBOX"):
        name = f"AIRFLOW_CONN_{conn_id}"
        conn = json.loads(os.environ[name])
        conn["extra"] = {**conn["extra"], "max_attempts": 10, "backoff_initial": 0.01, "backoff_max": 0.05}
        if conn_id.startswith("KING"):
            conn["extra"]["outcome_grace_seconds"] = 0  # re-runs follow at once here
        monkeypatch.setenv(name, json.dumps(conn))
    return connections


def test_200_invoices_with_faults_and_a_killed_run_book_each_exactly_once(
    run_dag, fast_connections, sandbox, state_store, tmp_path, monkeypatch
):
    fixture, exportable, unknown = big_fixture(tmp_path)
    sandbox.load(fixture)
    sandbox.faults("king", *FAULTS_KING, seed=11)
    sandbox.faults("qics", *FAULTS_QICS, seed=12)

    # run 1 is killed between booking and marking (after the 60th booking is on record)
    booked_steps = Counter()

    move = InvoiceLedger.move

    def killer(self, claim, expected, to, **values):
        moved = move(self, claim, expected, to, **values)
        if moved and to == "pdf_attached":
            booked_steps["n"] += 1
            if booked_steps["n"] == 60:
                raise KeyboardInterrupt("worker killed between booking and marking")
        return moved

    with monkeypatch.context() as patch:
        patch.setattr(InvoiceLedger, "move", killer)
        try:
            first, states = run_dag(DAG_ID)
        except KeyboardInterrupt:
            states = {"export": "killed"}
    assert states.get("export") != "success"
    ledger = InvoiceLedger(state_store, "noord")
    assert Counter(ledger.states().values())["pdf_attached"] >= 1 or booked_steps["n"] >= 60

    # run 2 with the faults still on, run 3 after they stopped: everything settles
    run_dag(DAG_ID)
    sandbox.clear_faults()
    final, states = run_dag(DAG_ID)
    assert states == {"select": "success", "export": "failed", "report": "failed"}  # the unknown debtors

    king = sandbox.state("king")["administrations"][0]
    boe = defaultdict(list)
    for row in king["tables"]["BOE"]:
        boe[row["FACT"]].append(row)
    assert set(boe) == set(exportable)  # exactly the exportable invoices, nothing else
    docs = Counter(d["GRPROW"] for d in king.get("documents", []))
    for number, invoice in exportable.items():
        rows = boe[number]
        assert len({r["GRPROW"] for r in rows}) == 1, f"{number} booked more than once"
        assert docs[rows[0]["GRPROW"]] == 1, f"{number}: not exactly one PDF"
        total = sum(Decimal(str(r["BEDRBOEK"])) + Decimal(str(r["BEDRBTW"])) for r in rows)
        assert total == Decimal(invoice["TotalAmountInclVat"]), number
    marks = Counter(
        int(s["EntityId"]) for s in sandbox.state("qics")["entities"]["EntityState"] if not s["IsError"]
    )
    assert set(marks) == {int(i["InvoiceHeaderId"]) for i in exportable.values()}
    rows = {row.invoice_number: row for row in ledger.rows()}
    assert all(rows[n].state == "marked" for n in exportable)
    for number in unknown:
        assert rows[number].state == "selected" and "does not exist in King" in rows[number].last_error
    assert Counter(r.state for r in rows.values())["skipped"] == 10


def test_two_king_connections_to_the_same_books_refuse_to_post(
    connections, state_store, tmp_path, monkeypatch
):
    """The config cannot see it (other connection ids), the connections can: nothing is posted."""
    import os
    from pathlib import Path

    import yaml
    from airflow.dag_processing.dagbag import DagBag

    root = Path(__file__).resolve().parents[2]
    config = yaml.safe_load((root / "include" / "administrations.yaml").read_text())
    twin = {**config["administrations"][0], "id": "noord_twin", "king_conn_id": "king_noord_twin"}
    twin["qics_company_id"] = 7  # another Qics company, so the config accepts it
    config["administrations"].append(twin)
    path = tmp_path / "administrations.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KING_QICS_CONFIG", str(path))
    monkeypatch.setenv("AIRFLOW_CONN_KING_NOORD_TWIN", os.environ["AIRFLOW_CONN_KING_NOORD"])
    bag = DagBag(dag_folder=str(root / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags[DAG_ID]
    for task in dag.tasks:
        task.retry_delay = timedelta(seconds=1)
    dag_run = dag.test(run_conf={"dry_run": False, "full_refresh": False})
    instances = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    assert instances["export"].state == "failed"
    assert instances["export"].try_number == 1  # a configuration error is not retried
    assert "CreateJournaalpost" not in connections.calls("king")
    assert InvoiceLedger(state_store, "noord").rows(("booking_sent", "booked", "marked")) == []
