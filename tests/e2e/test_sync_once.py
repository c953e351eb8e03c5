"""`make sync-once` itself: the README's quickest proof that it works must keep working."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sync_once_passes_and_its_second_round_writes_nothing():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "sync_once.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "sync-once: OK" in result.stdout
    table = result.stdout.split("counts round 1 | round 2", 1)[1]
    assert "booked 3 marked 3" in table and "| -" in table  # round 1 booked; round 2 had nothing to do
