"""``make sync-once``: the quickest proof that it works.

Starts fresh sandboxes with the demo fixture (on free ports), prepares a throw-away Airflow home,
runs every DAG of every demo administration once with ``airflow dags test``, then once more, and
prints the counts of both rounds. The second round must write nothing. Exits non-zero when a task
failed that the fixture does not expect to fail (``expected_failures`` in the fixture: marked
"failed (expected)" in the table), or when the second round wrote anything. Its temporary Airflow
home is removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "tools")]

from demo_home import airflow_env, prepare_airflow_home  # noqa: E402

from king_qics import catalog  # noqa: E402
from king_qics.catalog import CONFIG_NAME  # noqa: E402
from sandbox.server import free_port, start_process, stop_process  # noqa: E402

FIXTURE = ROOT / "sandbox" / "fixtures" / "demo.json"
DAG_KINDS = ("master_data", "projects_employees", "invoice_export")
WRITE_COUNTS = ("new", "changed", "booked", "marked")  # counts that mean something was written


def run_results(dag_id: str) -> tuple[str, dict[str, str], dict[str, dict]]:
    """State, task states and returned counts of the latest run of ``dag_id`` (metadata DB)."""
    from airflow.models import DagRun, TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).limit(1).one()
        tis = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run.run_id).all()
        states = {ti.task_id: str(ti.state) for ti in tis}
        xcoms = session.query(XComModel).filter_by(dag_id=dag_id, run_id=run.run_id, key="counts").all()
        counts = {}
        for xcom in xcoms:
            value = XComModel.deserialize_value(xcom)
            if isinstance(value, dict):
                counts[xcom.task_id] = value
        return str(run.state), states, counts


def main() -> int:
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    expected_failures = {
        (dag_id, task_id)
        for dag_id, tasks in fixture.get("expected_failures", {}).items()
        if not dag_id.startswith("_")  # "_comment"
        for task_id in tasks
    }
    home = Path(tempfile.mkdtemp(prefix="kqs-sync-once-"))
    # Before anything imports Airflow: it reads its home and database settings once, at import.
    os.environ.update(airflow_env(home))
    king_port, qics_port = free_port(), free_port()
    sandbox = start_process(king_port, qics_port)
    try:
        env = prepare_airflow_home(
            home, f"http://127.0.0.1:{king_port}/v1/ws1_xml.asmx", f"http://127.0.0.1:{qics_port}"
        )
        from king_qics.config import load_administrations

        administrations = load_administrations(ROOT / "include" / CONFIG_NAME).administrations
        dag_ids = [catalog.dag_id(adm.id, kind) for adm in administrations for kind in DAG_KINDS]
        rounds: list[dict] = []
        for number in (1, 2):
            results = {}
            for dag_id in dag_ids:
                print(f"round {number}: airflow dags test {dag_id}", flush=True)
                subprocess.run(
                    [str(Path(sys.executable).parent / "airflow"), "dags", "test", dag_id],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    check=False,
                )
                results[dag_id] = run_results(dag_id)
            rounds.append(results)
        return report(rounds, expected_failures)
    finally:
        stop_process(sandbox)
        shutil.rmtree(home, ignore_errors=True)


def report(rounds: list[dict], expected_failures: set[tuple[str, str]]) -> int:
    print(f"\n{'DAG':<40} {'task':<18} {'state (1)':<18} {'state (2)':<18} counts round 1 | round 2")
    problems = []
    for dag_id in rounds[0]:
        for task_id in sorted(rounds[0][dag_id][1]):
            states, texts = [], []
            for number, results in enumerate(rounds, start=1):
                _, task_states, counts = results[dag_id]
                state = task_states.get(task_id, "?")
                task_counts = counts.get(task_id, {})
                expected = (dag_id, task_id) in expected_failures
                states.append(f"{state} (expected)" if state == "failed" and expected else state)
                texts.append(
                    " ".join(
                        f"{k} {v}"
                        for k, v in task_counts.items()
                        if isinstance(v, int) and not isinstance(v, bool) and v
                    )
                )
                if state == "failed" and not expected:
                    problems.append(f"round {number}: {dag_id}.{task_id} failed unexpectedly")
                if number == 2 and any(task_counts.get(c) for c in WRITE_COUNTS):
                    problems.append(f"round 2: {dag_id}.{task_id} wrote something: {task_counts}")
            line = f"{dag_id:<40} {task_id:<18} {states[0]:<18} {states[1]:<18}"
            print(f"{line} {texts[0] or '-'} | {texts[1] or '-'}")
    print("\n(expected): failed on purpose, by the demo data (expected_failures in the fixture).")
    for problem in problems:
        print("PROBLEM:", problem)
    print("sync-once: OK" if not problems else f"sync-once: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
