"""Figure 4: invoice export of N processed Qics invoices to King (booking + PDF + mark), with the
sandboxes' latency per call (``--latency-ms``, default 30 ms).

Ours: the invoice export DAG's select and export tasks (king_qics.tasks.invoices) on an empty
ledger, every invoice through the ledger's durable steps (claimed, booking_sent, booked,
pdf_attached, marked: each a committed conditional update; never batched). Bare: the same HTTP
calls replayed with requests (bench.bare) against sandboxes reloaded with the same data; the floor:
calls x latency. Then a second run with nothing new.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench import bare
from bench.harness import (
    command,
    cpu_waits,
    export_invoices,
    king_data,
    latency_ms,
    measured,
    reads,
    reset_state,
    row,
    sandboxes,
    write_config,
    writes,
)

FULL, QUICK = 1_000, 20
RATIO_TARGET = 0.9  # ours / the bare serial loop, in bookings per second


def run(quick: bool, size: str | None = None) -> list[dict]:
    invoices = int(size) if size else (QUICK if quick else FULL)
    cmd = command(quick, "invoices") + (f" --size invoices={size}" if size else "")
    config = write_config(Path(tempfile.mkdtemp(prefix="kqs-bench-config-")))
    king, qics = king_data(invoices), {"generate": invoices, "seed": 1, "invoices": invoices}
    with sandboxes(latency_ms()) as sb:
        sb.load(king, qics)
        reset_state()
        with bare.record() as calls, cpu_waits(sb.process.pid) as waits, measured() as ours:
            counts = export_invoices(config)
        booked = counts["export"]["booked"]
        qics_writes, king_calls = writes(sb.calls("qics")), sum(sb.calls("king").values())

        sb.reset_calls()
        with measured() as again:
            second = export_invoices(config)
        again_qics, again_king = sb.calls("qics"), sb.calls("king")

        sb.load(king, qics)
        with cpu_waits(sb.process.pid) as bare_waits:
            replayed = bare.replay(calls)
        bare_writes, bare_king = writes(sb.calls("qics")), sum(sb.calls("king").values())

    ratio = replayed["wall"] / ours["wall"]  # = ours' bookings/s over the bare loop's
    floor = len(calls) * latency_ms() / 1000
    same = [c.status for c in calls] == replayed["statuses"] and (bare_writes, bare_king) == (
        qics_writes,
        king_calls,
    )
    label = f"invoice export, {invoices} invoices, {latency_ms():g} ms latency"
    pid = sb.process.pid
    waited = {what: f"{found['ours']:.1f} s / {found.get(pid, 0.0):.1f} s" for what, found in
              (("ours", waits), ("bare serial loop", bare_waits))}  # fmt: skip
    return [
        row(f"{label}: booked", booked, f"= {invoices}", booked == invoices, command=cmd, kind="count"),
        row(f"{label}: Qics writes (one EntityState per invoice)", qics_writes, f"= {invoices}",
            qics_writes == invoices, command=cmd, kind="count"),
        row(f"{label}: bare loop made the same calls with the same outcomes",
            f"{len(replayed['statuses'])} calls ({bare_king} King, {bare_writes} Qics writes)",
            f"{len(calls)} calls ({king_calls} King, {qics_writes} Qics writes)", same,
            command=cmd, kind="count"),
        row(f"{label}: ours, bookings/s",
            f"{booked / ours['wall']:.2f} ({booked} in {ours['wall']:.1f} s, CPU {ours['cpu']:.1f} s)",
            command=cmd, kind="time"),
        row(f"{label}: bare serial requests loop, bookings/s",
            f"{booked / replayed['wall']:.2f} ({len(calls)} calls in {replayed['wall']:.1f} s, "
            f"CPU {replayed['cpu']:.1f} s)", command=cmd, kind="time"),
        *(row(f"{label}: {what}: time runnable but waiting for a CPU (run queue), ours / sandboxes", value,
              command=cmd, kind="info") for what, value in waited.items()),
        row(f"{label}: serial floor (calls x latency)", f"{floor:.1f} s ({len(calls)} x {latency_ms():g} ms)",
            command=cmd, kind="info"),
        row(f"{label}: ours / bare", f"{ratio:.3f}", f">= {RATIO_TARGET}", ratio >= RATIO_TARGET,
            command=cmd, kind="ratio"),
        row(f"{label}, next run with nothing new: booked", second["export"]["booked"], "= 0",
            second["export"]["booked"] == 0, command=cmd, kind="count"),
        row(f"{label}, next run with nothing new: Qics reads",
            f"{reads(again_qics)} ({', '.join(f'{op}: {n}' for op, n in sorted(again_qics.items()))})",
            command=cmd, kind="info"),
        row(f"{label}, next run with nothing new: King calls, wall time",
            f"{sum(again_king.values())}, {again['wall']:.2f} s", command=cmd, kind="info"),
    ]  # fmt: skip
