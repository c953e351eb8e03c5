"""``make bench-quick`` inside the test suite: every benchmark at small sizes, in a subprocess,
with its counts asserted (Qics writes and reads, King calls per table, bookings, DAGs parsed, the
bare loop making the same calls); times are never asserted (bench/RESULTS.md records them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_quick_counts(tmp_path):
    output = tmp_path / "RESULTS.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    table = output.read_text() if output.exists() else "(no results written)"
    assert result.returncode == 0, f"{result.stderr[-4000:]}\n{table}"
    assert "failed (see notes)" not in table
    for figure in (
        "DAGs bagged",
        "steady state",
        "daily full read",
        "initial load",
        "invoice export",
        "peak RSS",
    ):
        assert figure in table, f"no {figure!r} figure:\n{table}"
