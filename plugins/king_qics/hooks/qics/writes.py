"""The writes of QicsMilestonesHook (mixed in): POST a new record (looked up by its natural key first
when a lost answer leaves the outcome unknown), PUT a changed one."""

from __future__ import annotations

import logging
from typing import Any

from king_qics.errors import OutcomeUnknownError
from king_qics.hooks.qics.odata import ODATA_ROOT, key, to_wire

log = logging.getLogger(__name__)


class QicsWrites:
    """Mixed into QicsMilestonesHook (uses its ``request``, ``find``, ``get`` and checks)."""

    def create(self, entity: str, record: dict, natural_key: dict | None = None) -> dict:
        """POST a new record; returns the saved record.

        POST is not idempotent. When its outcome is unknown (connection lost after sending) and a
        ``natural_key`` is given, the record is looked up first and only POSTed again if it is not
        there; without a natural key the OutcomeUnknownError is raised.
        """
        operation = f"POST {entity}"
        record_key = natural_key or None
        payload = to_wire(record)
        for attempt in (1, 2):
            try:
                response = self.request(
                    operation, "POST", f"{ODATA_ROOT}/{entity}", idempotent=False, json=payload
                )
            except OutcomeUnknownError:
                if not natural_key:
                    raise
                existing = self.find(entity, natural_key)
                if existing is not None:
                    log.info(
                        "qics %s %s: outcome was unknown; the record exists, so it did land",
                        operation,
                        record_key,
                    )
                    return existing
                if attempt == 2:
                    raise
                log.info(
                    "qics %s %s: outcome was unknown and the record is absent; sending once more",
                    operation,
                    record_key,
                )
                continue
            self._check(response, operation, record_key)
            return self._entity_json(response, operation)
        raise AssertionError("unreachable")

    def update(self, entity: str, id: Any, record: dict) -> dict:  # noqa: A002
        """PUT (replace) a record by id; returns the saved record."""
        record_key = key(id)
        operation = f"PUT {entity}"
        response = self.request(
            operation, "PUT", f"{ODATA_ROOT}/{entity}({record_key})", idempotent=True, json=to_wire(record)
        )
        self._check(response, operation, record_key)
        if response.status_code == 204 or not response.content:
            return self.get(entity, record_key) or {}
        return self._entity_json(response, operation)
