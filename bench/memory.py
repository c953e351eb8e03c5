"""Figure 5: peak memory (RSS) of a master-data run over N debtors, in a fresh child process.

The parent starts the sandboxes (King generated with N debtors, Qics an empty company); the child
(``python -m bench.memory N``) runs the initial load the way the DAG tasks do (employees, then the
master-data tasks with full_refresh: the heaviest run, every record read, mapped and written) and
prints its peak RSS (getrusage ru_maxrss). The sandboxes' own peak is reported beside it; it is not
the target (the real services are not ours).
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
from pathlib import Path

from bench.harness import (
    MASTER_DATA_ENTITIES,
    command,
    measured,
    qics_empty_company,
    reset_state,
    row,
    run_child,
    sandboxes,
    sync_entities,
    write_config,
)

FULL, QUICK = 100_000, 1_000
TARGET_MB = 1024


def run(quick: bool, size: str | None = None) -> list[dict]:
    debtors = int(size) if size else (QUICK if quick else FULL)
    cmd = command(quick, "memory") + (f" --size memory={size}" if size else "")
    with sandboxes() as sb:
        sb.load({"generate": debtors, "seed": 1}, qics_empty_company())
        child = run_child(["-m", "bench.memory", str(debtors)])
        sandbox_mb = sb.peak_rss_mb()
    label = f"master-data initial load, {debtors} debtors"
    return [
        row(
            f"{label}: customers created",
            child["customers"],
            f"= {debtors}",
            child["customers"] == debtors,
            command=cmd,
            kind="count",
        ),
        row(
            f"{label}: peak RSS of the sync process",
            f"{child['peak_rss_mb']:.0f} MB",
            f"< {TARGET_MB} MB",
            child["peak_rss_mb"] < TARGET_MB,
            command=cmd,
            kind="memory",
        ),
        row(
            f"{label}: wall / CPU time of the sync process",
            f"{child['wall']:.0f} s / {child['cpu']:.0f} s",
            command=cmd,
            kind="time",
        ),
        row(
            f"{label}: peak RSS of the sandboxes (not ours, for scale)",
            f"{sandbox_mb:.0f} MB" if sandbox_mb is not None else "?",
            command=cmd,
            kind="info",
        ),
    ]


def child(debtors: int) -> None:
    """In the child: the run, then its counts and peak RSS as one JSON line."""
    config = write_config(Path(tempfile.mkdtemp(prefix="kqs-bench-config-")))
    reset_state()
    with measured() as times:
        counts = sync_entities(config, ["employees", *MASTER_DATA_ENTITIES], full_refresh=True)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    print(json.dumps({"customers": counts["customers"]["new"], "peak_rss_mb": peak_kb / 1024, **times}))


if __name__ == "__main__":
    child(int(sys.argv[1]))
