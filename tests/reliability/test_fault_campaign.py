"""Fault campaign: seeded random faults on both sandboxes and DAG runs killed with SIGKILL, then one
clean run, then the invariants: no duplicate booking, no lost invoice, no King change missing in
Qics, the state store consistent with both sandboxes.

Administration ``noord`` with a generated data set (30 debtors, their lookups and projects; 24
processed invoices with PDFs). Every round first changes King master data (faults off: these are
the changes that must not get lost), then runs the three DAGs of ``noord`` with faults on; in some
rounds one DAG runs in a child process that is killed at a seeded random moment. The figures
(runs, faults per kind, kills, invariant counts) go to ``figures`` (RELIABILITY.md).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from king_qics.hooks.king import KingFinanceHook
from king_qics.hooks.qics import QicsMilestonesHook
from king_qics.state import InvoiceLedger, SyncedRecords, invoice_exports, utcnow
from king_qics.sync.invoices import claim_lease
from tests.king_records import update_record
from tests.reliability.campaign_checks import invoice_invariants, stage_people

ROOT = Path(__file__).resolve().parents[2]
ADM = "noord"
DAGS = [f"king_qics__{ADM}__{kind}" for kind in ("master_data", "projects_employees", "invoice_export")]
ROUNDS = 18  # in-process runs per DAG; with the killed runs every DAG runs at least 20 times
KILLS = {  # DAG -> how many of its runs are killed (extra runs, in a child process)
    DAGS[0]: 2,
    DAGS[1]: 2,
    DAGS[2]: 4,
}
SEED = 20261129
TIMEOUT = 0.3  # seconds; the latency fault waits longer than this
ATTEMPTS = 6  # per call, in the faulty rounds (a claim's lease follows from timeout x attempts)
OUTCOME_GRACE = 2  # seconds: longer than the latency fault, so a slow commit is found first
RETRY_DELAY = 0.2  # seconds between task retries (production: minutes)
FROZEN_ROUND = 0  # the first invoice export (everything still to book) is frozen past its lease
NUMBERING_FROM = 0  # King's sales journal numbers FACT itself: our bookings are known by marker only
QICS_SETS = [
    "VatCode",
    "PaymentCondition",
    "CostCenter",
    "ItemCompany",
    "CustomerCompany",
    "EmployeeCompany",
    "Project",
    "Invoice",
    "OverviewInvoiceLine",
    "EntityState",
]
# Not "POST token": QicsMilestones refresh tokens are single-use, so a refresh whose answer is lost
# burns the chain (re-authorization needed, see RELIABILITY.md); every other fault hits it too.
QICS_API_OPERATIONS = [f"{verb} {name}" for name in QICS_SETS for verb in ("GET", "POST", "PUT")]
QICS_API_OPERATIONS += [f"GET {name}(key)" for name in QICS_SETS] + ["GET Invoice/Pdf"]
KING_WRITES = ["CreateJournaalpost", "UpdateJournaalpost", "CreateStamTabelRecord", "UpdateStamtabelRecord"]


def fast_transport(monkeypatch, *, timeout: float, max_attempts: int = 4) -> None:
    """Short timeouts and backoff on every AIRFLOW_CONN_* connection of the test environment, and the
    King profile's outcome grace shortened to OUTCOME_GRACE."""
    for name, value in list(os.environ.items()):
        if name.startswith("AIRFLOW_CONN_") and value.startswith("{"):
            conn = json.loads(value)
            extra = conn.get("extra") or {}
            extra = json.loads(extra) if isinstance(extra, str) else extra
            extra.update(timeout=timeout, max_attempts=max_attempts, backoff_initial=0.02, backoff_max=0.2)
            if conn.get("conn_type") == "king_finance":
                extra["outcome_grace_seconds"] = OUTCOME_GRACE
            monkeypatch.setenv(name, json.dumps({**conn, "extra": extra}))


def king_faults(rate: float) -> list[dict]:
    return [
        {"kind": "http_500", "probability": rate},
        {"kind": "http_503", "probability": rate},
        {"kind": "http_429", "probability": rate, "retry_after": 0.05},
        {"kind": "latency", "probability": rate / 3, "latency_seconds": TIMEOUT + 0.3},
        {"kind": "expire_session", "probability": rate},
        {"kind": "drop_after_commit", "probability": 0.3, "operations": KING_WRITES},
    ]


def qics_faults(rate: float) -> list[dict]:
    return [
        {"kind": "http_500", "probability": rate},
        {"kind": "http_503", "probability": rate},
        {"kind": "http_429", "probability": rate, "retry_after": 0.05},
        {
            "kind": "latency",
            "probability": rate / 3,
            "latency_seconds": TIMEOUT + 0.3,
            "operations": QICS_API_OPERATIONS,
        },
        {"kind": "expire_session", "probability": rate / 2},
        {
            "kind": "drop_after_commit",
            "probability": 0.3,
            "operations": [op for op in QICS_API_OPERATIONS if not op.startswith("GET")],
        },
    ]


def campaign_fixture(tmp_path: Path) -> dict:
    from sandbox.king.generate import generate_section as king_section
    from sandbox.qics.generate import generate_section as qics_section

    qics = qics_section(30, seed=SEED, invoices=24)
    (tmp_path / "pdfs").mkdir()
    for key, content in qics["invoice_pdfs"].items():
        (tmp_path / "pdfs" / f"{key}.pdf").write_bytes(content)
    qics["invoice_pdfs"] = {key: f"pdfs/{key}.pdf" for key in qics["invoice_pdfs"]}
    return {"king": king_section(30, seed=SEED), "qics": qics, "_base_dir": str(tmp_path)}


def current_lease() -> float:
    """The claim lease (seconds) of an invoice-export run with the connections as they are now."""
    king, qics = KingFinanceHook(f"king_{ADM}"), QicsMilestonesHook("qics_sandbox")
    return claim_lease(king, qics).total_seconds()


def wait_for_claims(store, limit: float = 120) -> float:
    """Wait until no claim of a dead or frozen run holds an invoice any more; returns the wait."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        with store.engine.connect() as conn:
            held = conn.execute(
                invoice_exports.select().where(
                    invoice_exports.c.owner.is_not(None) & (invoice_exports.c.lease_until > utcnow())
                )
            ).all()
        if not held:
            break
        time.sleep(0.5)
    return time.monotonic() - started


# What the rounds change in King, and where it must arrive in Qics.
CHANGES = [  # King table, key field, King field, Qics entity, Qics code field, Qics field
    ("DEB", "NR", "PLAATS", "CustomerCompany", "CustomerCode", "VisitAddressCity"),
    ("ART", "NR", "OMSCHR", "ItemCompany", "ItemCode", "Name"),
    ("MEDEWERKER", "ZKSL", "ACHTERNM", "EmployeeCompany", "Abbreviation", "LastName"),
    ("KDR", "NR", "OMSCHR", "Project", "ProjectCode", "Name"),
]


def change_king(sandbox, rng: random.Random, round_no: int, changes: dict) -> None:
    """A few master-data changes in King (through the SOAP API, faults off)."""
    tables = sandbox.state("king")["administrations"][0]["tables"]
    with KingFinanceHook(f"king_{ADM}") as king:
        for table, key_field, field, entity, code_field, qics_field in CHANGES:
            for record in rng.sample(tables[table], 2 if table == "DEB" else 1):
                value = f"R{round_no} {rng.randrange(10**6)}"
                update_record(king, table, key_field, record[key_field], {field: value})
                changes[(entity, code_field, str(record[key_field]), qics_field)] = value


def run(dagbag, dag_id: str) -> dict[str, str]:
    """One DAG run with dag.test() (as tests/e2e's run_dag), retrying failed tasks after 0.2 s."""
    dag = dagbag.dags[dag_id]
    for task in dag.tasks:
        task.retry_delay = timedelta(seconds=RETRY_DELAY)
        task.max_retry_delay = timedelta(seconds=RETRY_DELAY)
    conf = {name: param.value for name, param in dag.params.items()}
    dag_run = dag.test(
        run_conf={
            **conf,
            **{name: False for name in ("full_refresh", "dry_run", "reconcile") if name in conf},
        }
    )
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def fired(sandbox) -> dict[str, Counter]:
    return {api: Counter(sandbox.admin(api, "GET", "faults")["fired"]) for api in ("king", "qics")}


@contextmanager
def child_run(dag_id: str, log_dir: Path, kind: str):
    """A DAG run (killable_run.py: the same dag.test()) in a child process, started."""
    log = open(log_dir / f"{kind}-{dag_id}-{time.monotonic_ns()}.log", "w")  # noqa: SIM115
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "reliability" / "killable_run.py"), dag_id, str(RETRY_DELAY)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        for line in child.stdout:  # Airflow may log to stdout before
            if line.strip() == "started":
                break
        else:
            raise AssertionError(f"the child did not start (see {log.name})")
        yield child
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        log.close()


def run_killed(dag_id: str, rng: random.Random, log_dir: Path) -> bool:
    """Run a DAG in a child process and SIGKILL it after a random delay; True if it was killed."""
    with child_run(dag_id, log_dir, "killed") as child:
        time.sleep(rng.uniform(0.3, 2.5))
        killed = child.poll() is None
        if killed:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
        return killed


def run_frozen(dagbag, dag_id: str, sandbox, log_dir: Path) -> bool:
    """A worker that freezes (SIGSTOP: a paused VM or container) while King answers its booking,
    stays frozen past its claims' lease while another run takes over, then resumes (SIGCONT) and
    runs to its end. True when the freeze happened mid-booking."""
    lease = current_lease()
    sandbox.faults(
        "king", {"kind": "latency", "latency_seconds": 1.5, "count": 1, "operations": ["CreateJournaalpost"]}
    )
    posts = sandbox.calls("king").get("CreateJournaalpost", 0)
    with child_run(dag_id, log_dir, "frozen") as child:
        deadline = time.monotonic() + 60
        while sandbox.calls("king").get("CreateJournaalpost", 0) == posts and time.monotonic() < deadline:
            if child.poll() is not None:
                return False
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGSTOP)
        try:
            time.sleep(lease + 1)
            run(dagbag, dag_id)  # takes over what the frozen run holds
        finally:
            os.kill(child.pid, signal.SIGCONT)
        child.wait(timeout=180)
        return True


def qics_by_code(state: dict, entity: str, code_field: str) -> dict[str, list[dict]]:
    out = defaultdict(list)
    for record in state["entities"].get(entity, []):
        if str(record.get("CompanyId")) == "1":
            out[str(record[code_field])].append(record)
    return out


def canonical(value):
    if value is None or isinstance(value, bool):
        return value
    try:
        return Decimal(str(value)).normalize()
    except ArithmeticError:
        return str(value)


STORED_ENTITIES = [  # state-store entity, Qics entity, its id field, its code field
    ("vat_codes", "VatCode", "VatCodeId", "Code"),
    ("payment_conditions", "PaymentCondition", "PaymentConditionId", "Code"),
    ("cost_centers", "CostCenter", "CostCenterId", "Code"),
    ("items", "ItemCompany", "ItemCompanyId", "ItemCode"),
    ("customers", "CustomerCompany", "CustomerCompanyId", "CustomerCode"),
    ("employees", "EmployeeCompany", "EmployeeCompanyId", "Abbreviation"),
    ("projects", "Project", "ProjectId", "ProjectCode"),
]


def state_store_problems(store, qics: dict) -> list[str]:
    """Where the state store and Qics disagree: one Qics record per code, its id stored, the stored
    mapped values equal to what Qics holds, nothing failing."""
    problems = []
    for entity, qics_entity, id_field, code_field in STORED_ENTITIES:
        in_qics = qics_by_code(qics, qics_entity, code_field)
        problems += [f"{entity} {code}: {len(r)} Qics records" for code, r in in_qics.items() if len(r) > 1]
        for key, row in SyncedRecords(store, ADM, entity).all().items():
            match = in_qics.get(key, [])
            if row.last_error or row.qics_id is None or len(match) != 1:
                problems.append(f"{entity} {key}: error {row.last_error!r}, qics_id {row.qics_id}")
                continue
            if int(match[0][id_field]) != row.qics_id:
                problems.append(f"{entity} {key}: qics_id {row.qics_id} != {match[0][id_field]}")
            for name, value in json.loads(row.record_json).items():
                if canonical(value) != canonical(match[0].get(name)):
                    problems.append(f"{entity} {key} {name}: stored {value!r} != {match[0].get(name)!r}")
    return problems


@pytest.mark.reliability
def test_fault_campaign(dagbag, connections, state_store, tmp_path, monkeypatch, figures):
    sandbox = connections
    fixture = campaign_fixture(tmp_path)
    staged = stage_people(fixture)
    sandbox.load(fixture)
    fast_transport(monkeypatch, timeout=TIMEOUT, max_attempts=ATTEMPTS)
    lease = current_lease()
    rng = random.Random(SEED)
    kill_rounds = {dag: set(rng.sample(range(ROUNDS), n)) for dag, n in KILLS.items()}
    before = fired(sandbox)
    runs, kills, states_seen = Counter(), Counter(), Counter()
    frozen = 0
    changes: dict[tuple, str] = {}

    for round_no in range(ROUNDS):
        sandbox.clear_faults()
        change_king(sandbox, rng, round_no, changes)
        if round_no == NUMBERING_FROM:
            numbering = {"environment_code": "00000", "journal": 70}
            sandbox.admin("king", "POST", "journal_numbering", json=numbering)
        if round_no == FROZEN_ROUND:
            frozen += run_frozen(dagbag, DAGS[2], sandbox, tmp_path)
            sandbox.clear_faults()
        rate = rng.choice((0.14, 0.17, 0.2))
        sandbox.faults("king", *king_faults(rate), seed=SEED + 2 * round_no)
        sandbox.faults("qics", *qics_faults(rate), seed=SEED + 2 * round_no + 1)
        for dag_id in DAGS:
            if round_no in kill_rounds[dag_id]:
                kills[dag_id] += run_killed(dag_id, rng, tmp_path)
            states = run(dagbag, dag_id)
            runs[dag_id] += 1
            states_seen.update(states.values())

    sandbox.clear_faults()
    after_faults = fired(sandbox)
    waited = wait_for_claims(state_store)  # a killed run's claims hold until their lease has passed
    fast_transport(monkeypatch, timeout=10)
    final_states = {dag_id: run(dagbag, dag_id) for dag_id in DAGS}

    # -- invariants ---------------------------------------------------------------------------
    king = sandbox.state("king")["administrations"][0]
    qics = sandbox.state("qics")
    invoices = invoice_invariants(king, qics, InvoiceLedger(state_store, ADM).rows(), staged)
    missing_changes = [
        key
        for key, value in changes.items()
        if [r.get(key[3]) for r in qics_by_code(qics, key[0], key[1]).get(key[2], [])] != [value]
    ]
    store_problems = state_store_problems(state_store, qics)

    fault_counts = {api: dict(after_faults[api] - before[api]) for api in ("king", "qics")}
    by_kind = Counter()
    for api_counts in fault_counts.values():
        by_kind.update(api_counts)
    figures(
        "fault_campaign",
        {
            "rounds": ROUNDS,
            "runs_per_dag": {dag: runs[dag] + kills[dag] for dag in DAGS},
            "runs_in_process": dict(runs),
            "runs_killed": dict(kills),
            "task_states_during_faults": dict(states_seen),
            "faults_injected": sum(by_kind.values()),
            "faults_by_kind": dict(by_kind),
            "faults_by_api": fault_counts,
            "king_changes": len(changes),
            "runs_frozen_past_their_lease": frozen,
            "claim_lease_seconds": round(lease, 1),
            "waited_for_dead_claims_seconds": round(waited, 1),
            "staged_situations": {name: len(ids) for name, ids in staged["ids"].items()},
            "bookings_numbered_by_king": invoices["renumbered_by_king"],
            "exportable_invoices": invoices["exportable"],
            "final_run_task_states": final_states,
            "duplicate_bookings": invoices["duplicates"],
            "unexpected_bookings": len(invoices["unexpected"]),
            "double_marks": invoices["double_marks"],
            "adopted_not_ours": len(invoices["adopted_not_ours"]),
            "near_matches_not_failing": len(invoices["near_matches_not_failing"]),
            "lost_invoices": len(invoices["lost"]),
            "missing_changes": len(missing_changes),
            "state_store_problems": len(store_problems),
        },
    )
    invoice_tasks = final_states.pop(DAGS[2])  # the two near matches fail it, as they must
    assert invoice_tasks == {"select": "success", "export": "failed", "report": "failed"}, invoice_tasks
    assert all(
        state in ("success", "skipped") for states in final_states.values() for state in states.values()
    ), final_states
    assert invoices["duplicates"] == 0 and invoices["double_marks"] == 0, invoices
    assert invoices["unexpected"] == [] and invoices["lost"] == [], invoices
    assert invoices["adopted_not_ours"] == [] and invoices["near_matches_not_failing"] == [], invoices
    assert frozen == 1 and invoices["renumbered_by_king"] >= 1
    assert missing_changes == []
    assert store_problems == []
    assert sum(by_kind.values()) >= 1000
    assert set(by_kind) >= {
        "http_500",
        "http_503",
        "http_429",
        "latency",
        "expire_session",
        "drop_after_commit",
    }
    assert all(runs[dag] + kills[dag] >= 20 for dag in DAGS) and sum(kills.values()) >= 5
