"""A master-data run killed (SIGKILL) while its writes are in flight and its successes are not all
stored yet (they are committed in batches, state.SavedBatch): the next run matches every record
Qics already has by its King key, so nothing is created twice and everything ends up synced.

The run is the DAG's own (``dag.test()`` in a child process, tests/reliability/killable_run.py),
with the shipped config (noord: qics_write_concurrency 4), against the sandboxes with 20 ms latency
per call."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from king_qics.state import SyncedRecords
from sandbox import universe
from sandbox.king.generate import generate_section

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "king_qics__noord__master_data"
DEBTORS = 1200
KILL_AFTER = 250  # customers in Qics


@pytest.fixture
def generated(connections):
    """King with DEBTORS generated debtors, Qics with only noord's company, 20 ms latency per call
    (switched off again afterwards: the sandboxes are shared)."""
    adm = universe.ADMINISTRATIONS[0]
    company = {"CompanyId": "1", "Name": adm["name"], "Code": adm["qics_company_code"], "CurrencyId": "1"}
    connections.admin("king", "POST", "load", json=generate_section(DEBTORS, seed=11))
    connections.admin("qics", "POST", "load", json={"entities": {"Company": [company]}})
    for api in ("king", "qics"):
        connections.admin(api, "PUT", "latency", json={"seconds": 0.02})
    try:
        yield connections
    finally:
        for api in ("king", "qics"):
            connections.admin(api, "PUT", "latency", json={"seconds": 0})


def customers_in_qics(sandbox) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for record in sandbox.state("qics")["entities"].get("CustomerCompany", []):
        found.setdefault(str(record["CustomerCode"]), []).append(int(record["CustomerCompanyId"]))
    return found


def test_a_run_killed_before_its_successes_were_stored_creates_nothing_twice(
    generated, state_store, run_dag, tmp_path
):
    sandbox = generated
    log = open(tmp_path / "killed.log", "w")  # noqa: SIM115
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "reliability" / "killable_run.py"), DAG_ID, "1"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 240
        while len(customers_in_qics(sandbox)) < KILL_AFTER:
            assert child.poll() is None, f"the run ended before it could be killed: {tmp_path / 'killed.log'}"
            assert time.monotonic() < deadline, "the run wrote too few customers in time"
            time.sleep(0.1)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        log.close()

    in_qics = customers_in_qics(sandbox)
    stored = SyncedRecords(state_store, "noord", "customers").qics_ids()
    assert KILL_AFTER <= len(in_qics) < DEBTORS  # killed mid-run
    assert set(stored) < set(in_qics)  # records Qics has whose success the run had not stored yet

    _, states = run_dag(DAG_ID)

    assert states["customers"] == "success", states
    in_qics = customers_in_qics(sandbox)
    king_keys = {
        str(row["NR"]) for row in generate_section(DEBTORS, seed=11)["administrations"][0]["tables"]["DEB"]
    }
    assert set(in_qics) == king_keys
    assert Counter(len(ids) for ids in in_qics.values()) == {1: DEBTORS}  # none created twice
    stored = SyncedRecords(state_store, "noord", "customers").qics_ids()
    assert stored == {key: ids[0] for key, ids in in_qics.items()}
