"""``make compose-test``: the production shape (docker-compose.yaml) started for real, in containers.

1. The Docker engine and the compose/buildx CLI plugins (tools/compose_engine.py), the stand-in
   base images (tools/standin_images.py), then ``docker compose build`` of the project image on the
   stand-in Airflow image.
2. ``docker compose --profile sandboxes up`` with one worker: init, api-server, scheduler,
   dag-processor, triggerer, worker, PostgreSQL, Redis, both emulators, the demo connections.
3. Through the REST API (JWT login as the compose's admin user) the DAGs of administration
   ``zuid``: master data, projects/employees (one worker); checks in the Qics emulator and the
   state store.
4. Scaled to two workers, the invoice export; while King holds its first CreateJournaalpost (a
   latency fault of the emulator), the worker running ``export`` is killed (``docker kill``). The
   run must still end correct after Airflow's retry on the other worker: every invoice booked
   exactly once in King, marked in the ledger.
5. The invoice export again on two workers: nothing is booked twice (no CreateJournaalpost at all;
   the run is idle: select finds nothing to do, export and report are skipped).

Everything is torn down at the end, also on failure (``--keep`` keeps the stack for a look).
Each wait has its own timeout. Only 127.0.0.1 and the stack's own containers are addressed.
Run as root: ``python tools/compose_test.py`` (not part of ``make test``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compose_engine import ensure_all  # noqa: E402
from compose_stack import ROOT, AirflowApi, Stack, StackError, wait_for  # noqa: E402
from standin_images import build_all  # noqa: E402

ADMINISTRATION = "zuid"
KING_ENVIRONMENT = "31337"
QICS_COMPANY = "2"
INVOICES = {"Z2026001", "Z2026002", "Z2026003"}
EXPECTED_FAILED = {"master_data": {"customers"}}  # debtor 10006, by design (sandbox/fixtures/demo.json)
DEMO = json.loads((ROOT / "sandbox" / "fixtures" / "demo.json").read_text(encoding="utf-8"))
STARTUP_TIMEOUT = 600
RUN_TIMEOUT = 420
KILLED_RUN_TIMEOUT = 900  # heartbeat timeout (60 s here) + retry delay (1 min) + the retry itself
HOLD_SECONDS = 45  # how long King holds the first booking of the killed run


def dag_id(kind: str) -> str:
    return f"king_qics__{ADMINISTRATION}__{kind}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_env_file(folder: Path, images: dict[str, str], ports: dict[str, int]) -> Path:
    """The test's own .env: generated secrets, the stand-in images, ports bound to 127.0.0.1."""
    values = {
        "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "AIRFLOW_UID": "50000",
        "AIRFLOW_IMAGE_NAME": "king-qics-sync-airflow:3.3.2-standin",
        **images,
        **{name: f"127.0.0.1:{port}" for name, port in ports.items()},
    }
    path = folder / "compose-test.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    path.chmod(0o600)
    return path


def prepare_logs_folder() -> None:
    """./logs is mounted into every Airflow container, which runs as uid 50000 (group 0)."""
    logs = ROOT / "logs"
    logs.mkdir(exist_ok=True)
    shutil.chown(logs, 50000, 0)
    logs.chmod(0o775)


class Checks:
    """The steps of the test, with what each one checked (printed at the end)."""

    def __init__(self, stack: Stack, ports: dict[str, int]):
        self.stack = stack
        self.api_url = f"http://127.0.0.1:{ports['AIRFLOW_API_PORT']}"
        self.king = f"http://127.0.0.1:{ports['KING_SANDBOX_PORT']}"
        self.qics = f"http://127.0.0.1:{ports['QICS_SANDBOX_PORT']}"
        self.api: AirflowApi | None = None
        self.results: list[str] = []

    def ok(self, text: str) -> None:
        print(f"CHECK ok: {text}", flush=True)
        self.results.append(text)

    def login(self) -> None:
        self.api = wait_for(
            "the admin login", lambda: AirflowApi(self.api_url, self.stack.admin_password()), 120
        )
        self.ok("JWT login as admin (POST /auth/token)")

    def run_dag(self, kind: str, skipped: frozenset[str] = frozenset()) -> tuple[str, dict]:
        """Trigger a run and wait for it; ``skipped``: the tasks an idle run skips (its gate found
        nothing to do)."""
        started = time.monotonic()
        run_id = self.api.trigger(dag_id(kind), STARTUP_TIMEOUT)

        def finished():  # a task waiting for a retry here is a failure already: stop at once
            tasks = self.api.task_instances(dag_id(kind), run_id)
            retrying = [task for task, ti in tasks.items() if ti["state"] == "up_for_retry"]
            if retrying:
                raise StackError(
                    f"{dag_id(kind)}: {retrying} up for retry (see ./logs/dag_id={dag_id(kind)})"
                )
            state = self.api.run_state(dag_id(kind), run_id)
            return state if state in ("success", "failed") else None

        state = wait_for(f"{dag_id(kind)} run {run_id}", finished, RUN_TIMEOUT)
        tasks = self.api.task_instances(dag_id(kind), run_id)
        self.check_tasks(kind, state, tasks, skipped)
        self.ok(f"{dag_id(kind)}: {state} in {time.monotonic() - started:.0f} s, tasks as expected")
        return run_id, tasks

    @staticmethod
    def check_tasks(kind: str, state: str, tasks: dict, skipped: frozenset[str]) -> None:
        failed = {task for task, ti in tasks.items() if ti["state"] not in ("success", "skipped")}
        were_skipped = {task for task, ti in tasks.items() if ti["state"] == "skipped"}
        expected = EXPECTED_FAILED.get(kind, set())
        if failed != expected or were_skipped != skipped or state != ("failed" if expected else "success"):
            raise StackError(
                f"{dag_id(kind)}: run {state}, tasks { ({t: ti['state'] for t, ti in tasks.items()}) }"
            )

    def king_calls(self) -> dict[str, int]:
        return requests.get(f"{self.king}/_sandbox/calls", timeout=10).json()

    def bookings(self) -> dict[str, int]:
        """Invoice number -> how many King bookings (journal entries: GRPROW) carry it."""
        king = requests.get(f"{self.king}/_sandbox/state", timeout=30).json()
        adm = next(a for a in king["administrations"] if a["environment_code"] == KING_ENVIRONMENT)
        entries: dict[str, set] = {}
        for row in adm["tables"].get("BOE", []):  # one BOE row (RG) per line; GRPROW: the booking
            entries.setdefault(row["FACT"], set()).add(row["GRPROW"])
        return {number: len(keys) for number, keys in sorted(entries.items())}

    def check_master_data(self) -> None:
        qics = requests.get(f"{self.qics}/_sandbox/state", timeout=30).json()["entities"]

        def in_company(entity: str, field: str) -> set[str]:
            return {str(r[field]) for r in qics.get(entity, []) if str(r.get("CompanyId")) == QICS_COMPANY}

        tables = next(
            a for a in DEMO["king"]["administrations"] if a["environment_code"] == KING_ENVIRONMENT
        )["tables"]
        debtors = {str(row["NR"]) for row in tables["DEB"]}
        assert in_company("CustomerCompany", "CustomerCode") == debtors - {"10006"}
        # ZKSL is the employee's key in Qics (Abbreviation); PERSNR its integer EmployeeNumber
        assert in_company("EmployeeCompany", "Abbreviation") >= {row["ZKSL"] for row in tables["MEDEWERKER"]}
        assert in_company("Project", "ProjectCode") >= {str(row["NR"]) for row in tables["KDR"]}
        synced = self.stack.psql(
            "king_qics_state",
            f"SELECT count(*) FROM synced_records WHERE administration = '{ADMINISTRATION}'",
        )
        assert int(synced[0][0]) > 0, synced
        self.ok(
            f"Qics emulator: {len(debtors) - 1} customers (all but debtor 10006), employees and projects"
            f" of company {QICS_COMPANY}; state store king_qics_state: {synced[0][0]} synced_records"
        )

    def check_invoices(self, when: str) -> None:
        booked = self.bookings()
        if booked != dict.fromkeys(sorted(INVOICES), 1):
            raise StackError(
                f"{when}: King bookings per invoice {booked}, expected one of each {sorted(INVOICES)}"
            )
        ledger = dict(
            self.stack.psql(
                "king_qics_state",
                "SELECT invoice_number, state FROM invoice_exports"
                f" WHERE administration = '{ADMINISTRATION}'",
            )
        )
        if ledger != dict.fromkeys(INVOICES, "marked"):
            raise StackError(f"{when}: ledger {ledger}")
        posts = self.king_calls().get("CreateJournaalpost", 0)
        self.ok(
            f"{when}: King has {', '.join(booked)} booked once each ({posts} CreateJournaalpost in all);"
            " ledger: all marked"
        )

    def scale_workers(self, count: int) -> None:
        self.stack.compose(
            "up", "-d", "--no-recreate", "--no-deps", "--scale", f"airflow-worker={count}", "airflow-worker"
        )
        self.stack.wait_ready(workers=count, timeout=STARTUP_TIMEOUT)
        self.ok(f"{count} Celery workers healthy (celery inspect ping)")

    def invoice_export_with_killed_worker(self) -> None:
        fault = {
            "kind": "latency",
            "latency_seconds": HOLD_SECONDS,
            "count": 1,
            "operations": ["CreateJournaalpost"],
        }
        requests.post(f"{self.king}/_sandbox/faults", json=fault, timeout=10).raise_for_status()
        started = time.monotonic()
        kind = "invoice_export"
        run_id = self.api.trigger(dag_id(kind), STARTUP_TIMEOUT)

        def booking_in_flight():
            if self.king_calls().get("CreateJournaalpost"):
                return True
            if self.api.run_state(dag_id(kind), run_id) in ("success", "failed"):
                states = {t: ti["state"] for t, ti in self.api.task_instances(dag_id(kind), run_id).items()}
                raise StackError(f"{dag_id(kind)} ended before its first booking: {states}")
            return False

        wait_for("the first CreateJournaalpost", booking_in_flight, RUN_TIMEOUT, 0.5)
        export = self.api.task_instances(dag_id(kind), run_id)["export"]
        assert export["state"] == "running", export
        victim = self.stack.worker_for(export["hostname"])
        subprocess.run(["docker", "kill", victim], check=True, capture_output=True)
        print(f"killed worker {export['hostname']} in export try {export['try_number']}", flush=True)
        state = self.api.wait_run(dag_id(kind), run_id, KILLED_RUN_TIMEOUT)
        tasks = self.api.task_instances(dag_id(kind), run_id)
        self.check_tasks(kind, state, tasks, frozenset())
        retried = tasks["export"]
        assert retried["try_number"] > export["try_number"], retried
        assert retried["hostname"] != export["hostname"], retried
        self.ok(
            f"{dag_id(kind)} with worker {export['hostname']} killed mid-booking: {state} after"
            f" {time.monotonic() - started:.0f} s, export retried (try {retried['try_number']}) on"
            f" {retried['hostname']}"
        )
        self.check_invoices("after the killed run")

    def invoice_export_again(self) -> None:
        before = self.king_calls().get("CreateJournaalpost", 0)
        # every invoice booked and marked, nothing new in Qics: select (the gate) finds nothing to do
        self.run_dag("invoice_export", skipped=frozenset({"export", "report"}))
        posts = self.king_calls().get("CreateJournaalpost", 0) - before
        assert posts == 0, f"{posts} CreateJournaalpost calls in the repeated export"
        self.check_invoices("after the export again on 2 workers (no CreateJournaalpost)")


def main() -> int:
    parser = argparse.ArgumentParser(description="the compose stack in containers, end to end")
    parser.add_argument("--keep", action="store_true", help="leave the stack running at the end")
    args = parser.parse_args()
    # also when stopped (kill PID, or Ctrl-C of a background run): raise, so the stack is torn down
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    timings: dict[str, float] = {}
    started = time.monotonic()

    def step(name: str, function, *fargs):
        t0 = time.monotonic()
        print(f"\n== {name}", flush=True)
        result = function(*fargs)
        timings[name] = time.monotonic() - t0
        return result

    step("engine and compose plugins", ensure_all)
    images = step("stand-in images", build_all)
    ports = {name: free_port() for name in ("AIRFLOW_API_PORT", "KING_SANDBOX_PORT", "QICS_SANDBOX_PORT")}
    work = Path(tempfile.mkdtemp(prefix="kqs-compose-test-"))
    stack = Stack(write_env_file(work, images, ports))
    checks = Checks(stack, ports)
    prepare_logs_folder()
    failed = True
    try:
        stack.down()  # what an interrupted earlier run may have left
        # every Airflow service names the same image: build it once (a plain `build` builds it per service)
        step("docker compose build", stack.compose, "build", "airflow-init")
        step("docker compose up (1 worker)", stack.compose, "up", "-d")
        step("stack healthy", stack.wait_ready)
        checks.ok(
            "init and sandbox-connections exited 0; postgres, redis, api-server, scheduler, "
            "dag-processor, triggerer, worker and sandboxes healthy"
        )
        step("login", checks.login)
        step("master data", checks.run_dag, "master_data")
        step("projects and employees", checks.run_dag, "projects_employees")
        step("master data checks", checks.check_master_data)
        step("scale to 2 workers", checks.scale_workers, 2)
        step("invoice export, a worker killed", checks.invoice_export_with_killed_worker)
        step("back to 2 workers", checks.scale_workers, 2)
        step("invoice export again", checks.invoice_export_again)
        failed = False
    except (StackError, AssertionError, subprocess.SubprocessError, requests.RequestException) as exc:
        print(f"\nFAILED: {type(exc).__name__}: {exc}", flush=True)
        stack.print_logs()
    finally:
        if args.keep:
            print(f"stack kept: docker compose -p kqs-compose-test --env-file {stack.env_file} ...")
        else:
            step("docker compose down", stack.down)
            shutil.rmtree(work, ignore_errors=True)
    print("\n== timings (s)")
    for name, seconds in timings.items():
        print(f"{seconds:7.1f}  {name}")
    print(f"{time.monotonic() - started:7.1f}  in all")
    print("\n== checked")
    for text in checks.results:
        print(f"- {text}")
    print(f"\ncompose test: {'FAILED' if failed else 'passed'} ({len(checks.results)} checks)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
