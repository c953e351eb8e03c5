"""Figure 4: invoice export of N processed Qics invoices to King (booking + PDF + mark).

Ours: the invoice export DAG's select and export tasks (king_qics.tasks.invoices) on an
empty ledger. Bare: the same HTTP calls replayed with requests (bench.bare) against sandboxes
reloaded with the same data. Bookings per second of both and ours / bare. Then a second run with
nothing new, which shows what the select step re-reads every run (all processed invoice headers
since the go-live cutoff).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench import bare
from bench.harness import (
    command,
    export_invoices,
    king_data,
    measured,
    reads,
    reset_state,
    row,
    sandboxes,
    write_config,
    writes,
)

FULL, QUICK = 1_000, 20
RATIO_TARGET = 0.8


def run(quick: bool, size: str | None = None) -> list[dict]:
    invoices = int(size) if size else (QUICK if quick else FULL)
    cmd = command(quick, "invoices") + (f" --size invoices={size}" if size else "")
    config = write_config(Path(tempfile.mkdtemp(prefix="kqs-bench-config-")))
    king, qics = king_data(invoices), {"generate": invoices, "seed": 1, "invoices": invoices}
    with sandboxes() as sb:
        sb.load(king, qics)
        reset_state()
        with bare.record() as calls, measured() as ours:
            counts = export_invoices(config)
        booked = counts["export"]["booked"]
        qics_writes, king_calls = writes(sb.calls("qics")), sum(sb.calls("king").values())

        sb.reset_calls()
        with measured() as again:
            second = export_invoices(config)
        again_qics, again_king = sb.calls("qics"), sb.calls("king")

        sb.load(king, qics)
        replayed = bare.replay(calls)
        bare_writes, bare_king = writes(sb.calls("qics")), sum(sb.calls("king").values())

    ours_rate, bare_rate = booked / ours["wall"], booked / replayed["wall"]
    ratio = ours_rate / bare_rate
    same = [c.status for c in calls] == replayed["statuses"] and (bare_writes, bare_king) == (
        qics_writes,
        king_calls,
    )
    label = f"invoice export, {invoices} invoices"
    return [
        row(f"{label}: booked", booked, f"= {invoices}", booked == invoices, command=cmd, kind="count"),
        row(
            f"{label}: Qics writes (one EntityState per invoice)",
            qics_writes,
            f"= {invoices}",
            qics_writes == invoices,
            command=cmd,
            kind="count",
        ),
        row(
            f"{label}: bare loop made the same calls with the same outcomes",
            f"{len(replayed['statuses'])} calls ({bare_king} King, {bare_writes} Qics writes)",
            f"{len(calls)} calls ({king_calls} King, {qics_writes} Qics writes)",
            same,
            command=cmd,
            kind="count",
        ),
        row(
            f"{label}: ours, bookings/s",
            f"{ours_rate:.1f} ({booked} in {ours['wall']:.1f} s, CPU {ours['cpu']:.1f} s)",
            command=cmd,
            kind="time",
        ),
        row(
            f"{label}: bare requests loop, bookings/s",
            f"{bare_rate:.1f} ({len(calls)} calls in {replayed['wall']:.1f} s, CPU {replayed['cpu']:.1f} s)",
            command=cmd,
            kind="time",
        ),
        row(
            f"{label}: ours / bare",
            f"{ratio:.2f}",
            f">= {RATIO_TARGET}",
            ratio >= RATIO_TARGET,
            command=cmd,
            kind="ratio",
        ),
        row(
            f"{label}, next run with nothing new: booked",
            second["export"]["booked"],
            "= 0",
            second["export"]["booked"] == 0,
            command=cmd,
            kind="count",
        ),
        row(
            f"{label}, next run with nothing new: Qics reads "
            "(select re-reads every processed header since the cutoff)",
            f"{reads(again_qics)} ({', '.join(f'{op}: {n}' for op, n in sorted(again_qics.items()))})",
            command=cmd,
            kind="info",
        ),
        row(
            f"{label}, next run with nothing new: King calls, wall time",
            f"{sum(again_king.values())}, {again['wall']:.2f} s",
            command=cmd,
            kind="info",
        ),
    ]
