"""Jinja2 filters of the King <-> Qics page: times, ledger states in words, empty values as blanks.

Times are rendered as ``<time datetime="...UTC...">`` with the Amsterdam time as text; the page's
script (base.html) rewrites them in the time zone the Airflow UI shows (the one chosen in its user
menu, else the browser's, as the Airflow UI does) and labels the zone, so the page and the Airflow
UI around it show the same times. Without the script the label says Amsterdam.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from markupsafe import Markup, escape

from king_qics.catalog import AMSTERDAM, TIMEZONE
from king_qics.ledger_words import ledger_state_words

SERVER_ZONE = TIMEZONE  # what the page says before its script relabels the times


def local_time(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(AMSTERDAM).strftime("%Y-%m-%d %H:%M")


def time_tag(value: datetime | None) -> Markup:
    """A time the page's script can show in the Airflow UI's time zone."""
    if value is None:
        return Markup("")
    moment = value.astimezone(UTC).isoformat()
    return Markup('<time datetime="{}">{}</time>').format(moment, local_time(value))


def cell(value, column: str = "") -> Markup:
    """A table cell: times as <time>, ledger states in words, booleans yes/no, nothing as blank."""
    if value is None:
        return Markup("")
    if column == "state":
        return escape(ledger_state_words(value))
    if isinstance(value, bool):
        return Markup("yes" if value else "no")
    if isinstance(value, datetime):
        return time_tag(value)
    if isinstance(value, date):
        return escape(value.isoformat())
    return escape(str(value))


COLUMN_LABELS = {"last_error": "reason", "pending": "waits for", "state": "ledger state"}


def label(name: str) -> str:
    return COLUMN_LABELS.get(name, name.replace("_", " "))


FILTERS = {"local_time": local_time, "time": time_tag, "cell": cell, "label": label}
