"""What one entity's master-data run reports, and what its records share while it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from king_qics.state import SavedBatch, SyncedRecords
from king_qics.sync.record_writes import RecordWrites


@dataclass
class EntityReport:
    administration: str
    entity: str
    full_read: bool = False
    dry_run: bool = False
    read: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    pending: int = 0  # synced, but an optional link still waits (e.g. a customer's manager)
    failures: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)  # the pending records: what each waits for
    outcomes: dict[str, str] | None = None  # on demand (keys): what happened to each key named
    accepted: dict[str, str] = field(default_factory=dict)  # failed as accepted as is: not counted

    def tell(self, key: str, outcome: str) -> None:
        if self.outcomes is not None:
            self.outcomes[key] = outcome

    def counts(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "read": self.read,
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "pending": self.pending,
            "full_read": self.full_read,
            "dry_run": self.dry_run,
        }


@dataclass
class EntityRun:
    """What one entity's run shares between its records."""

    mapping: Any
    records: SyncedRecords
    report: EntityReport
    qics_now: dict[str, dict] | None  # Qics's records by King key, when read (else None)
    full_refresh: bool
    dry_run: bool
    retry_rejected: bool  # send records Qics rejected again even when unchanged
    saves: SavedBatch
    writes: RecordWrites
