"""Figure 3: initial load of N customers (and their lookups) into an empty Qics company.

Ours: employees, then the master-data DAG's tasks with ``full_refresh`` (the README's initial load;
employees first so that every customer's manager link resolves at once), through
king_qics.tasks. Bare: the same HTTP calls replayed with requests (bench.bare) against sandboxes
reloaded with the same data. Records per second of both, and ours / bare.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench import bare
from bench.harness import (
    MASTER_DATA_ENTITIES,
    command,
    king_data,
    measured,
    qics_empty_company,
    reset_state,
    row,
    sandboxes,
    sync_entities,
    write_config,
    writes,
)

FULL, QUICK = 10_000, 200
RATIO_TARGET = 0.8


def run(quick: bool, size: int | None = None) -> list[dict]:
    debtors = int(size) if size else (QUICK if quick else FULL)
    cmd = command(quick, "initial_load") + (f" --size initial_load={size}" if size else "")
    config = write_config(Path(tempfile.mkdtemp(prefix="kqs-bench-config-")))
    king, qics = king_data(debtors), qics_empty_company()
    with sandboxes() as sb:
        sb.load(king, qics)
        reset_state()
        with bare.record() as calls, measured() as ours:
            counts = sync_entities(config, ["employees", *MASTER_DATA_ENTITIES], full_refresh=True)
        created = sum(c["new"] for c in counts.values())
        qics_writes = writes(sb.calls("qics"))
        sb.load(king, qics)
        replayed = bare.replay(calls)
        bare_writes = writes(sb.calls("qics"))

    ours_rate, bare_rate = created / ours["wall"], created / replayed["wall"]
    ratio = ours_rate / bare_rate
    same = [c.status for c in calls] == replayed["statuses"] and bare_writes == qics_writes
    return [
        row(
            f"initial load: customers created ({debtors} debtors)",
            counts["customers"]["new"],
            f"= {debtors}",
            counts["customers"]["new"] == debtors,
            command=cmd,
            kind="count",
        ),
        row(
            "initial load: Qics writes = records created (all entities)",
            qics_writes,
            f"= {created}",
            qics_writes == created,
            command=cmd,
            kind="count",
        ),
        row(
            "initial load: bare loop made the same calls with the same outcomes",
            f"{len(replayed['statuses'])} calls, {bare_writes} writes",
            f"{len(calls)} calls, {qics_writes} writes",
            same,
            command=cmd,
            kind="count",
        ),
        row(
            "initial load: ours, records/s",
            f"{ours_rate:.0f} ({created} in {ours['wall']:.1f} s, CPU {ours['cpu']:.1f} s)",
            command=cmd,
            kind="time",
        ),
        row(
            "initial load: bare requests loop, records/s",
            f"{bare_rate:.0f} ({len(calls)} calls in {replayed['wall']:.1f} s, CPU {replayed['cpu']:.1f} s)",
            command=cmd,
            kind="time",
        ),
        row(
            "initial load: ours / bare",
            f"{ratio:.2f}",
            f">= {RATIO_TARGET}",
            ratio >= RATIO_TARGET,
            command=cmd,
            kind="ratio",
        ),
    ]
