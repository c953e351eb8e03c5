"""Reconciliation: where does Qics differ from what King says it should hold? Reads only.

For each master-data entity: read the King table in full, map it exactly as the sync does
(``MasterDataSync.map``: the same mapping YAML and lookups), read the administration's Qics
records, and compare field by field (``field_differences``, the comparison of ``full_refresh``).
Reported per record and field: King key, Qics id, field, expected (King, mapped) and actual (Qics);
plus King records missing in Qics and King records that cannot be mapped (with the reason).
Nothing is written to King or Qics; the latest report per administration and entity is kept in the
state store (``reconciliations``) for the status page, and logged.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from king_qics.mapping import load_mapping
from king_qics.state import StateStore, save_reconciliation, utcnow
from king_qics.sync.diff import field_differences, json_ready
from king_qics.sync.master_data import MasterDataSync

log = logging.getLogger(__name__)

# At most this many differences are logged per entity (all of them are stored).
LOG_LIMIT = 200
KIND_LABELS = {"missing": "(missing in Qics)", "unmapped": "(cannot be mapped)", "field": ""}


@dataclass
class Reconciliation:
    administration: str
    entity: str
    run_id: str | None = None
    started_at: datetime = field(default_factory=utcnow)
    king_records: int = 0
    qics_records: int = 0
    differences: list[dict[str, Any]] = field(default_factory=list)

    @property
    def differing_records(self) -> int:
        return len({row["king_key"] for row in self.differences})

    def counts(self) -> dict[str, Any]:
        kinds = [row["kind"] for row in self.differences]
        return {
            "entity": self.entity,
            "king_records": self.king_records,
            "qics_records": self.qics_records,
            "differing_records": self.differing_records,
            "fields_differing": kinds.count("field"),
            "missing_in_qics": kinds.count("missing"),
            "unmapped": kinds.count("unmapped"),
        }

    def table(self, limit: int = LOG_LIMIT) -> str:
        rows = [("key", "Qics id", "field", "expected (King)", "actual (Qics)")]
        for row in self.differences[:limit]:
            rows.append(
                (
                    row["king_key"],
                    "" if row["qics_id"] is None else str(row["qics_id"]),
                    row["field"] or KIND_LABELS[row["kind"]],
                    _shown(row["expected"]),
                    _shown(row["actual"]),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows
        ]
        lines.insert(1, "  ".join("-" * width for width in widths))
        if len(self.differences) > limit:
            lines.append(f"... and {len(self.differences) - limit} more (all on the King <-> Qics page)")
        return "\n".join(line.rstrip() for line in lines)

    def save(self, store: StateStore) -> None:
        report = {
            "administration": self.administration,
            "entity": self.entity,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": utcnow(),
            "king_records": self.king_records,
            "qics_records": self.qics_records,
            "differing_records": self.differing_records,
            "differences": len(self.differences),
        }
        save_reconciliation(store, report, self.differences)


def _shown(value: str | None) -> str:
    return "" if value is None else value


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def reconcile_entity(sync: MasterDataSync, entity: str) -> Reconciliation:
    """Compare one entity of ``sync``'s administration; reads King and Qics, writes nothing."""
    mapping = load_mapping(entity)
    result = Reconciliation(sync.adm.id, entity, run_id=sync.run_id)
    king_df, unreadable = sync.king.read_table_isolated(mapping.king_table_for(sync.adm), mapping.king_fields)
    mapped = sync.map(mapping, king_df)
    in_qics = sync.read_qics(mapping)
    result.king_records, result.qics_records = len(king_df), len(in_qics)

    for key, row in zip(map(str, mapped.records.index), mapped.records.to_dict("records"), strict=True):
        expected = {name: json_ready(value) for name, value in row.items()}
        current = in_qics.get(key)
        if current is None:
            result.differences.append(_row(key, None, "missing", None, None, None))
            continue
        qics_id = current.get(mapping.qics_id_field)
        for name, want, have in field_differences(expected, current):
            result.differences.append(_row(key, qics_id, "field", name, _json(want), _json(have)))
    for key, reason in sorted({**mapped.errors, **unreadable}.items()):
        current = in_qics.get(str(key))
        qics_id = current.get(mapping.qics_id_field) if current is not None else None
        result.differences.append(_row(str(key), qics_id, "unmapped", None, reason, None))
    result.differences.sort(key=lambda row: (_sort_key(row["king_key"]), row["field"] or ""))
    return result


def _row(king_key, qics_id, kind, field_name, expected, actual) -> dict[str, Any]:
    return {
        "king_key": king_key,
        "qics_id": None if qics_id is None else int(qics_id),
        "kind": kind,
        "field": field_name,
        "expected": expected,
        "actual": actual,
    }


def _sort_key(key: str) -> tuple:
    return (0, int(key), key) if key.isdigit() else (1, 0, key)
