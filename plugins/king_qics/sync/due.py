"""When "today" began for the daily work (the full read, the reconciliation, the invoices' full
pass), and when a master-data run must read a whole King table: pendulum only, so the light tasks
(the invoice selection, the gate) need not import pandas."""

from __future__ import annotations

from datetime import datetime, timedelta

import pendulum

from king_qics.catalog import DAILY_CUTOFF, TIMEZONE

# MUTDATE_VA takes a date: re-reading from the start of the watermark's day (minus this overlap)
# means nothing changed around a run's start can slip past the watermark.
WATERMARK_OVERLAP = timedelta(minutes=15)


def daily_cutoff(moment: datetime) -> pendulum.DateTime:
    """The latest 07:00 Amsterdam time at or before ``moment``: what ran before it is not from
    "today" (the daily full read, the daily reconciliation)."""
    local = pendulum.instance(moment).in_timezone(TIMEZONE)
    hour, minute = DAILY_CUTOFF
    daily = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return daily.subtract(days=1) if local < daily else daily


def reconciliation_due(store, administration: str, now: datetime) -> bool:
    """Daily: the first run after 07:00 Amsterdam time (as the daily full read)."""
    from king_qics.state import last_reconciled_at

    last = last_reconciled_at(store, administration)
    return last is None or pendulum.instance(last) < daily_cutoff(now)


# More failing records than this are re-read with one full read instead of one call per key.
MAX_KEYED_REREADS = 50


def full_read_reason(watermark, started: datetime, full_refresh: bool, failing: int) -> str | None:
    """Why this run must read the whole King table (None: an incremental read will do)."""
    if full_refresh:
        return "full_refresh"
    if watermark is None or watermark.last_full_read_at is None:
        return "first sync"
    if failing > MAX_KEYED_REREADS:
        return f"{failing} failing records to re-read"
    if pendulum.instance(watermark.last_full_read_at) < daily_cutoff(started):
        hour, minute = DAILY_CUTOFF
        return f"first run after {hour:02d}:{minute:02d}: the daily full read"
    return None
