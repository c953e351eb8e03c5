"""When "today" began for the daily work (the full read, the reconciliation, the invoices' full
pass): pendulum only, so the light tasks (the invoice selection) need not import pandas."""

from __future__ import annotations

from datetime import datetime

import pendulum

from king_qics.catalog import DAILY_CUTOFF, TIMEZONE


def daily_cutoff(moment: datetime) -> pendulum.DateTime:
    """The latest 07:00 Amsterdam time at or before ``moment``: what ran before it is not from
    "today" (the daily full read, the daily reconciliation)."""
    local = pendulum.instance(moment).in_timezone(TIMEZONE)
    hour, minute = DAILY_CUTOFF
    daily = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return daily.subtract(days=1) if local < daily else daily
