"""Figure 2: the steady state of the master-data DAG over N debtors with their lookups.

Setup (not measured): employees, then one full master-data cycle, so every record is synced.
Then, each through king_qics.tasks like the DAG's tasks:
- a cycle with no change in King: no Qics write or read; King one read per table plus the
  session calls (MUTDATE_VA returns nothing changed since the watermark);
- 1% of the debtors changed in King (UpdateStamtabelRecord, which stamps them changed now): Qics
  writes exactly that many, King reads ceil(changed / page size) pages of DEB;
- the daily full read (the day's first run after 07:00; the watermarks are set back two days):
  King reads ceil(N / page size) pages per table, Qics writes nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.harness import (
    MASTER_DATA_ENTITIES,
    SESSION_OPERATIONS,
    command,
    expire_daily_full_read,
    king_data,
    measured,
    pages,
    qics_empty_company,
    reads,
    reset_state,
    row,
    sandboxes,
    sync_entities,
    write_config,
    writes,
)
from tests.king_records import update_record

FULL, QUICK = 10_000, 300
CHANGED_SHARE = 0.01


def king_tables() -> dict[str, list[str]]:
    """entity -> the King tables its task reads (its own table first, then lookup tables)."""
    from king_qics.mapping import load_mapping

    tables = {}
    for entity in MASTER_DATA_ENTITIES:
        mapping = load_mapping(entity)
        tables[entity] = [mapping.king_table, *mapping.extra_tables]
    return tables


def change_debtors(numbers: list[int]) -> None:
    """Change the city of these debtors in King through its API (as a user would in King)."""
    from king_qics.hooks.king import KingFinanceHook

    with KingFinanceHook("king_noord") as king:
        for number in numbers:
            update_record(king, "DEB", "NR", number, {"PLAATS": f"Bench {number % 97}"})


def cycle(sb, config: Path) -> tuple[dict, dict, dict, dict]:
    sb.reset_calls()
    with measured() as times:
        counts = sync_entities(config, MASTER_DATA_ENTITIES)
    return counts, sb.calls("king"), sb.calls("qics"), times


def run(quick: bool, size: str | None = None) -> list[dict]:
    from king_qics.hooks.king import KingFinanceHook

    debtors = int(size) if size else (QUICK if quick else FULL)
    cmd = command(quick, "master_data") + (f" --size master_data={size}" if size else "")
    page_size = KingFinanceHook.default_page_size
    tables = king_tables()
    per_table_reads = sum(len(t) for t in tables.values())
    tasks = len(MASTER_DATA_ENTITIES)
    config = write_config(Path(tempfile.mkdtemp(prefix="kqs-bench-config-")))
    rows = []

    def count(figure: str, value, expected) -> None:
        rows.append(row(figure, value, f"{expected}", value == expected, command=cmd, kind="count"))

    with sandboxes() as sb:
        sb.load(king_data(debtors), qics_empty_company())
        reset_state()
        sync_entities(config, ["employees"])
        sync_entities(config, MASTER_DATA_ENTITIES)

        # 1. nothing changed
        counts, king, qics, times = cycle(sb, config)
        session = sum(king.get(op, 0) for op in SESSION_OPERATIONS)
        label = f"steady state, {debtors} debtors, no change"
        count(f"{label}: Qics writes", writes(qics), 0)
        count(f"{label}: Qics reads", reads(qics), 0)
        count(
            f"{label}: King reads (GetStamtabelRecords)", king.get("GetStamtabelRecords", 0), per_table_reads
        )
        count(f"{label}: King session calls (Login + Logout per task)", session, 2 * tasks)
        count(f"{label}: King calls in all", sum(king.values()), per_table_reads + 2 * tasks)
        rows.append(
            row(f"{label}: wall time of our code", f"{times['wall']:.2f} s", command=cmd, kind="time")
        )
        rows.append(row(f"{label}: CPU time of our code", f"{times['cpu']:.2f} s", command=cmd, kind="time"))

        # 2. 1% of the debtors changed
        changed = max(1, round(debtors * CHANGED_SHARE))
        change_debtors([10_000 + i * (debtors // changed) for i in range(changed)])
        counts, king, qics, times = cycle(sb, config)
        label = f"steady state, {changed} of {debtors} debtors changed"
        count(f"{label}: customers changed", counts["customers"]["changed"], changed)
        count(f"{label}: Qics writes", writes(qics), changed)
        count(
            f"{label}: King reads (DEB pages + one per other table)",
            king.get("GetStamtabelRecords", 0),
            per_table_reads - 1 + pages(changed, page_size),
        )
        rows.append(
            row(
                f"{label}: Qics reads (the current record before each update)",
                reads(qics),
                command=cmd,
                kind="info",
            )
        )
        rows.append(
            row(f"{label}: wall time of our code", f"{times['wall']:.2f} s", command=cmd, kind="time")
        )
        rows.append(row(f"{label}: CPU time of our code", f"{times['cpu']:.2f} s", command=cmd, kind="time"))

        # 3. the daily full read
        expire_daily_full_read()
        counts, king, qics, times = cycle(sb, config)
        label = f"daily full read, {debtors} debtors"
        count(f"{label}: every task read in full", all(c["full_read"] for c in counts.values()), True)
        count(f"{label}: Qics writes", writes(qics), 0)
        count(
            f"{label}: King reads (ceil(N / {page_size}) pages of DEB + one per other table)",
            king.get("GetStamtabelRecords", 0),
            per_table_reads - 1 + pages(debtors, page_size),
        )
        rows.append(
            row(f"{label}: wall time of our code", f"{times['wall']:.2f} s", command=cmd, kind="time")
        )
        rows.append(row(f"{label}: CPU time of our code", f"{times['cpu']:.2f} s", command=cmd, kind="time"))
    return rows
