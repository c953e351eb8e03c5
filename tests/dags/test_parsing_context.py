"""A task process builds only the DAG it runs: the task runner parses the DAG file inside Airflow's
parsing context (``_airflow_parsing_context_manager(dag_id=..., task_id=...)``, task_runner.py),
and dags/king_qics.py reads it with ``get_parsing_context()``. The dag-processor (no context) builds
every DAG. Checked with 200 administrations in fresh processes, as the task runner parses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ADMINISTRATIONS = 200

PARSE = textwrap.dedent(
    """
    import json, sys, time
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions._internal.dag_parsing_context import _airflow_parsing_context_manager

    dag_id = sys.argv[2] or None
    started = time.process_time()
    if dag_id:
        with _airflow_parsing_context_manager(dag_id=dag_id, task_id="any"):
            bag = DagBag(dag_folder=sys.argv[1])
    else:
        bag = DagBag(dag_folder=sys.argv[1])
    cpu = time.process_time() - started
    print(json.dumps({"dags": sorted(bag.dags), "errors": bag.import_errors, "cpu": cpu}))
    """
)


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    shipped = yaml.safe_load((ROOT / "include" / "administrations.yaml").read_text(encoding="utf-8"))
    template = shipped["administrations"][0]
    entries = [
        {**template, "id": f"adm_{i:04d}", "king_conn_id": f"king_adm_{i:04d}", "qics_company_id": 100 + i}
        for i in range(ADMINISTRATIONS)
    ]
    path = tmp_path_factory.mktemp("many") / "administrations.yaml"
    path.write_text(yaml.safe_dump({"administrations": entries}, sort_keys=False), encoding="utf-8")
    return path


def parse(config: Path, dag_id: str = "") -> dict:
    env = {**os.environ, "KING_QICS_CONFIG": str(config)}
    out = subprocess.run(
        [sys.executable, "-c", PARSE, str(ROOT / "dags"), dag_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_task_process_builds_only_its_own_dag(many):
    everything = parse(many)
    # three per administration, the maintenance, preflight and alerts DAGs
    assert len(everything["dags"]) == 3 * ADMINISTRATIONS + 3 and everything["errors"] == {}
    for dag_id in (
        "king_qics__adm_0150__master_data",
        "king_qics__adm_0007__invoice_export",
        "king_qics__adm_0042__projects_employees",
    ):
        task_process = parse(many, dag_id)
        assert task_process["dags"] == [dag_id] and task_process["errors"] == {}
        # building 1 DAG instead of 603: most of the parse's CPU is gone
        assert task_process["cpu"] < everything["cpu"] / 2, (task_process["cpu"], everything["cpu"])
    assert parse(many, "king_qics__preflight")["dags"] == ["king_qics__preflight"]
    assert parse(many, "king_qics__alerts")["dags"] == ["king_qics__alerts"]
    assert parse(many, "king_qics__maintenance")["dags"] == ["king_qics__maintenance"]


def test_a_broken_entry_is_still_reported_by_the_dag_processor(many, tmp_path):
    config = yaml.safe_load(many.read_text())
    config["administrations"][3]["qics_company_id"] = "not-a-number"
    broken = tmp_path / "administrations.yaml"
    broken.write_text(yaml.safe_dump(config))
    assert len(parse(broken)["errors"]) == 1
    # a task of another administration still runs: its process builds its DAG and nothing else
    task_process = parse(broken, "king_qics__adm_0004__master_data")
    assert task_process["dags"] == ["king_qics__adm_0004__master_data"] and task_process["errors"] == {}
