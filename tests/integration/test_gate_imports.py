"""The idle gate is light: a task process that runs the master-data gate (tasks.gate.check_for_work,
against the King sandbox, with the state store) imports no pandas. Importing pandas cost a
third of an idle gate task instance's own CPU (bench/scale.md); the gate needs only each
mapping's King table, fields and key (mapping/names.py keeps loading a mapping pandas-free)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.invoice_env import use_sandbox_connections

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, sys
from king_qics.tasks.gate import check_for_work
found = {
    kind: check_for_work(sys.argv[1], "noord", kind, params={})
    for kind in ("master_data", "projects_employees")
}
print(json.dumps({"pandas": "pandas" in sys.modules, "numpy": "numpy" in sys.modules, "found": found}))
"""


def test_the_gate_of_both_master_data_dags_runs_without_pandas(sandbox, monkeypatch, tmp_path):
    use_sandbox_connections(sandbox, monkeypatch)
    sandbox.reset_calls()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),  # a fresh sync-state store (SQLite) in it
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
    }
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT / "include" / "administrations.yaml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # nothing synced yet: work to do, found from the store and from King's answers
    for kind, verdict in result["found"].items():
        assert verdict and verdict["reasons"] and verdict["fingerprints"], kind
    assert sandbox.calls("king")["GetStamtabelRecords"] == 7  # one read per table, both DAGs
    assert (result["pandas"], result["numpy"]) == (False, False)
