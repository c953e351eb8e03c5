"""Jinja2 filters of the King <-> Qics page: times in Amsterdam time, empty values as blanks."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def local_time(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(AMSTERDAM).strftime("%Y-%m-%d %H:%M")


def cell(value) -> str:
    """A table cell: times local, booleans yes/no, nothing as blank."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return local_time(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def label(name: str) -> str:
    return name.replace("_", " ")


FILTERS = {"local_time": local_time, "cell": cell, "label": label}
