"""Whether a mapped master-data record must be written to Qics, and why: the fields that differ
from what Qics holds, and the decision (new, changed, unchanged, or still rejected).

Two ways to know what Qics holds: its record itself (read on full_refresh and for records new to
the state store), compared field by field in canonical form; else the hash of the record last
written (king_qics.mapping.record_hash), which costs no Qics read. Pure: no API, no database.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import pandas as pd

from king_qics.mapping import canonical_value as canonical


class Action(StrEnum):
    NEW = "new"  # not in Qics: create it
    CHANGED = "changed"  # in Qics with other values: update it
    UNCHANGED = "unchanged"  # in Qics as mapped: nothing to write
    STILL_REJECTED = "still_rejected"  # Qics refused exactly this record before: not sent again


def decide(
    payload: dict,
    digest: str,
    *,
    stored,
    current: dict | None,
    qics_id: int | None,
    retry_rejected: bool,
) -> Action:
    """What to do with one mapped record (``digest``: its hash). ``stored``: the state store's row
    (None: never synced); ``current``: Qics's record when it was read; ``qics_id``: its Qics id if
    it has one. A record Qics rejected is sent again only when it changed, or ``retry_rejected``."""
    if stored is not None and stored.last_error and stored.rejected_hash == digest and not retry_rejected:
        return Action.STILL_REJECTED
    if qics_id is None:
        return Action.NEW
    if current is not None:
        return Action.CHANGED if field_differences(payload, current) else Action.UNCHANGED
    if stored is not None and stored.record_hash == digest and not stored.last_error:
        return Action.UNCHANGED
    return Action.CHANGED


def bookkeeping_due(stored, digest: str, pending: str | None) -> bool:
    """An unchanged record whose state-store row still says otherwise (no row, another hash, a stale
    error or pending link): the row is brought up to date, Qics is not written."""
    return stored is None or (stored.record_hash, stored.last_error, stored.pending) != (
        digest,
        None,
        pending,
    )


def field_differences(payload: dict, current: dict) -> list[tuple[str, Any, Any]]:
    """(field, mapped value, value in ``current``) for every field where the two differ."""
    differences = []
    for name, value in payload.items():
        new, old = canonical(value), canonical(current.get(name))
        if new != old:
            differences.append((name, new, old))
    return differences


def describe_differences(payload: dict, current: dict) -> list[str]:
    """Fields whose mapped value differs from ``current``, as 'Field: old -> new'."""
    return [f"{name}: {old!r} -> {new!r}" for name, new, old in field_differences(payload, current)]


def canonical_record(record: dict) -> dict:
    return {name: canonical(value) for name, value in record.items()}


def canonical_json(record: dict) -> str:
    """The record as the state store keeps it (what a dry run compares with when Qics is not read)."""
    return json.dumps(canonical_record(record))


def stored_values(stored) -> dict | None:
    """The record last written, as the state store kept it (None: none)."""
    if stored is None or not stored.record_json:
        return None
    return json.loads(stored.record_json)


def json_ready(value: Any) -> Any:
    """A mapped value as it goes on the wire: NaN/NA/NaT become None."""
    return None if is_missing(value) else value


def is_missing(value) -> bool:
    try:
        return bool(pd.isna(value)) if not isinstance(value, list | dict) else False
    except (TypeError, ValueError):
        return False
