"""Figure 3: initial load of N customers (and their lookups) into an empty Qics company, with the
sandboxes' latency per call (``--latency-ms``, default 30 ms).

Ours: employees, then the master-data DAG's tasks with ``full_refresh`` (the README's initial load;
employees first so that every customer's manager link resolves at once), through king_qics.tasks,
once serially (``qics_write_concurrency: 1``) and once with ``qics_write_concurrency: 8``. Bare:
the serial run's HTTP calls replayed with requests (bench.bare) against sandboxes reloaded with the
same data. The floor: calls x latency / concurrency, what the calls alone cost at that latency.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench import bare
from bench.harness import (
    MASTER_DATA_ENTITIES,
    command,
    cpu_waits,
    king_data,
    latency_ms,
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
SERIAL_TARGET = 0.95  # ours / bare serial loop, in records per second
CONCURRENCY = 8
FLOOR_TARGET = 1.3  # ours at CONCURRENCY / the CONCURRENCY-way floor, in seconds
ENTITIES = ["employees", *MASTER_DATA_ENTITIES]


def rate(records: int, times: dict) -> str:
    return f"{records / times['wall']:.1f} ({records} in {times['wall']:.1f} s, CPU {times['cpu']:.1f} s)"


def run(quick: bool, size: int | None = None) -> list[dict]:
    debtors = int(size) if size else (QUICK if quick else FULL)
    cmd = command(quick, "initial_load") + (f" --size initial_load={size}" if size else "")
    folder = Path(tempfile.mkdtemp(prefix="kqs-bench-config-"))
    serial, concurrent = (write_config(folder, write_concurrency=n) for n in (1, CONCURRENCY))
    king, qics = king_data(debtors), qics_empty_company()
    latency = latency_ms() / 1000
    with sandboxes(latency_ms()) as sb:
        sb.load(king, qics)
        reset_state()
        with bare.record() as calls, cpu_waits(sb.process.pid) as waits, measured() as ours:
            counts = sync_entities(serial, ENTITIES, full_refresh=True)
        created = sum(c["new"] for c in counts.values())
        qics_writes = writes(sb.calls("qics"))

        sb.load(king, qics)
        with cpu_waits(sb.process.pid) as bare_waits:
            replayed = bare.replay(calls)
        bare_writes = writes(sb.calls("qics"))

        sb.load(king, qics)
        reset_state()
        with cpu_waits(sb.process.pid) as waits_n, measured() as ours_n:
            counts_n = sync_entities(concurrent, ENTITIES, full_refresh=True)
        calls_n = sum(sb.calls("king").values()) + sum(sb.calls("qics").values())
        writes_n, peak = writes(sb.calls("qics")), sb.peak_in_flight("qics")

    n_calls = len(calls)
    floor, floor_n = n_calls * latency, n_calls * latency / CONCURRENCY
    ratio = replayed["wall"] / ours["wall"]  # = ours' records/s over the bare loop's
    over_floor = ours_n["wall"] / floor_n if floor_n else 0.0
    same = [c.status for c in calls] == replayed["statuses"] and bare_writes == qics_writes
    label = f"initial load, {debtors} debtors, {latency_ms():g} ms latency"
    pid = sb.process.pid

    def waited(what: str, found: dict) -> dict:
        return row(
            f"{label}: {what}: time runnable but waiting for a CPU (run queue), ours / sandboxes",
            f"{found['ours']:.1f} s / {found.get(pid, 0.0):.1f} s",
            command=cmd,
            kind="info",
        )

    created_n = sum(c["new"] for c in counts_n.values())
    return [
        row(f"{label}: customers created", counts["customers"]["new"], f"= {debtors}",
            counts["customers"]["new"] == debtors, command=cmd, kind="count"),
        row(f"{label}: Qics writes = records created (all entities)", qics_writes, f"= {created}",
            qics_writes == created, command=cmd, kind="count"),
        row(f"{label}: bare loop made the same calls with the same outcomes",
            f"{len(replayed['statuses'])} calls, {bare_writes} writes",
            f"{n_calls} calls, {qics_writes} writes", same, command=cmd, kind="count"),
        row(f"{label}: ours, serial (qics_write_concurrency 1), records/s",
            rate(created, ours),
            command=cmd, kind="time"),
        row(f"{label}: bare serial requests loop, records/s",
            f"{created / replayed['wall']:.1f} ({n_calls} calls in {replayed['wall']:.1f} s, "
            f"CPU {replayed['cpu']:.1f} s)", command=cmd, kind="time"),
        waited("ours, serial", waits),
        waited("bare serial loop", bare_waits),
        row(f"{label}: serial floor (calls x latency)", f"{floor:.1f} s ({n_calls} x {latency_ms():g} ms)",
            command=cmd, kind="info"),
        row(f"{label}: ours / bare, serial", f"{ratio:.3f}", f">= {SERIAL_TARGET}", ratio >= SERIAL_TARGET,
            command=cmd, kind="ratio"),
        row(f"{label}: with qics_write_concurrency {CONCURRENCY}: records created, Qics writes",
            f"{created_n}, {writes_n}", f"{created}, {qics_writes}",
            (created_n, writes_n) == (created, qics_writes), command=cmd, kind="count"),
        row(f"{label}: with qics_write_concurrency {CONCURRENCY}: calls (both APIs), most Qics requests in "
            "flight at once", f"{calls_n}, {peak}", f"{n_calls}, <= {CONCURRENCY}",
            calls_n == n_calls and peak <= CONCURRENCY, command=cmd, kind="count"),
        row(f"{label}: ours with qics_write_concurrency {CONCURRENCY}, records/s",
            rate(created_n, ours_n),
            command=cmd, kind="time"),
        waited(f"ours with qics_write_concurrency {CONCURRENCY}", waits_n),
        row(f"{label}: {CONCURRENCY}-way floor (calls x latency / {CONCURRENCY})", f"{floor_n:.1f} s",
            command=cmd, kind="info"),
        row(f"{label}: ours with qics_write_concurrency {CONCURRENCY} / the {CONCURRENCY}-way floor, in time",
            f"{over_floor:.2f}", f"<= {FLOOR_TARGET}", over_floor <= FLOOR_TARGET, command=cmd, kind="ratio"),
    ]  # fmt: skip
