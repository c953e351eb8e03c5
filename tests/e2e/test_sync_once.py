"""`make sync-once` itself: the README's quickest proof that it works must keep working."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sync_once_passes_and_its_second_round_writes_nothing(tmp_path):
    temp = tmp_path / "tmp"  # where its temporary Airflow home goes (and must be gone from after)
    temp.mkdir()
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "sync_once.py")],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(temp)},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "sync-once: OK" in result.stdout
    table = result.stdout.split("counts round 1 | round 2", 1)[1]
    assert "booked 3 marked 3" in table and "| -" in table  # round 1 booked; round 2 had nothing to do
    # the failures the demo data makes on purpose are marked as such, in both rounds
    rows = {tuple(line.split()[:2]): line for line in table.splitlines() if line.startswith("king_qics__")}
    states = {key: line[60:98] for key, line in rows.items()}  # the columns state (1) and state (2)
    assert states[("king_qics__noord__master_data", "customers")].split() == ["failed", "(expected)"] * 2
    assert all(text.count("failed") == text.count("failed (expected)") for text in states.values())
    assert sorted(path.name for path in temp.iterdir()) == []  # its temporary files are removed
