"""``python -m bench.scale --quick`` inside the test suite: the real scheduler (LocalExecutor on
PostgreSQL) runs 2 administrations' DAGs through a first cycle and one steady-state cycle against
the sandboxes with latency. Counts are asserted, never times: the steady-state cycle runs only the
two gates per administration (``check_king``, ``select``); every other task is skipped.

Three and a half minutes of the real scheduler: part of ``make bench`` (``pytest -m bench``), not
of ``make test``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.bench]
# | 2 (steady state; invoice_export, master_data) | 04:48 | 4 | 4 / 16 / 0 | ...
ROW = (
    r"^\| (\d) \((first sync|steady state); ([a-z_, ]+)\) \| [\d:]+ \| (\d+) "
    r"\| (\d+) / (\d+) / (\d+) \|"
)


def test_scale_quick_steady_state_runs_only_the_gates(tmp_path):
    output = tmp_path / "scale.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    table = output.read_text() if output.exists() else "(no results written)"
    assert result.returncode == 0, f"{result.stderr[-4000:]}\n{table}"
    rows = {int(match.group(1)): match for match in re.finditer(ROW, table, re.MULTILINE)}
    assert set(rows) == {1, 2}, table
    first, steady = rows[1], rows[2]
    assert first.group(2) == "first sync" and int(first.group(7)) == 0, table  # nothing failed
    # 2 administrations: their master-data and invoice-export runs, each only its first task
    assert steady.group(2) == "steady state" and int(steady.group(4)) == 4, table
    assert int(steady.group(5)) == 4 and int(steady.group(7)) == 0, table
