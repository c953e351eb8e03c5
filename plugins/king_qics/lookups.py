"""The Qics ids a mapping looks up (King code -> Qics id of the synced record), and what a code
without one means, told from the sync-state store alone (no King call):

- its own record failed to sync: the code exists in King (it was read) but is on the failing list;
- the looked-up entity was read from King (it has a watermark) and the code is not among the
  records read: it does not exist in King (every record read gets a row, synced or failing);
- the looked-up entity was never read for this administration: nothing is known yet.
"""

from __future__ import annotations

from datetime import datetime

from king_qics.catalog import AMSTERDAM

REASON_SHOWN = 120  # characters of the looked-up record's own failure quoted in a reason
SYNCED_BY = {"employees": "the projects/employees DAG", "projects": "the projects/employees DAG"}


class SyncedIds(dict):
    """King key -> Qics id of the records of ``entity`` in Qics, as ``mapping.apply`` takes them,
    plus ``why_missing(field, code)`` for a code that has none."""

    def __init__(
        self,
        ids: dict[str, int],
        *,
        entity: str,
        king_table: str,
        failing: dict[str, str],
        last_read: datetime | None,
    ):
        super().__init__(ids)
        self.entity, self.king_table = entity, king_table
        self.failing, self.last_read = failing, last_read

    def why_missing(self, field: str, code: str) -> str:
        what = f"King {field} {code}"
        if code in self.failing:
            reason = self.failing[code]
            if len(reason) > REASON_SHOWN:
                reason = reason[: REASON_SHOWN - 3] + "..."
            return f"{what} exists in King, but its own sync failed ({self.entity} {code}: {reason})"
        if self.last_read is None:
            by = SYNCED_BY.get(self.entity, "the master-data DAG")
            return (
                f"{what} is not synced to Qics yet: {self.entity} were never synced for this "
                f"administration ({by} syncs them)"
            )
        read = self.last_read.astimezone(AMSTERDAM).strftime("%Y-%m-%d %H:%M")
        return (
            f"{what} does not exist in King (no {self.king_table} record {code} when {self.entity} "
            f"were last read, {read} Amsterdam): correct the code in King, or add record {code} to "
            f"King's {self.king_table}"
        )


def synced_ids(store, administration, entity: str) -> SyncedIds:
    """The lookup of ``entity`` for ``administration`` (an Administration) from the state store."""
    from king_qics.mapping import load_mapping
    from king_qics.state import SyncedRecords, Watermarks

    records = SyncedRecords(store, administration.id, entity)
    king_table = load_mapping(entity).king_table_for(administration)
    watermark = Watermarks(store, administration.id).get(king_table)
    last_read = None
    if watermark is not None:
        last_read = watermark.read_until
        if last_read.tzinfo is None:  # SQLite keeps UTC without the zone
            from datetime import UTC

            last_read = last_read.replace(tzinfo=UTC)
    return SyncedIds(
        records.qics_ids(),
        entity=entity,
        king_table=king_table,
        failing=records.failing(),
        last_read=last_read,
    )
