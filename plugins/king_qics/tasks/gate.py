"""The first task of a master-data DAG: whether the run has anything to do (king_qics.sync.gate).
Idle, it says so in its log and the entity tasks (and the reconciliation) are skipped: no task
process starts for them."""

from __future__ import annotations

import logging

from king_qics.tasks import administration, apis, state_store

log = logging.getLogger(__name__)


def check_for_work(config_path: str, administration_id: str, kind: str, **context) -> dict | None:
    """The reasons to run and the fingerprints of what King returned (XCom), or None: nothing to do."""
    from contextlib import contextmanager

    from king_qics.catalog import DagKind
    from king_qics.state import utcnow
    from king_qics.sync.gate import check

    adm, config = administration(config_path, administration_id)
    store = state_store(config)

    @contextmanager
    def open_king():
        with apis(adm, store, qics=False) as (king, _):
            yield king

    verdict = check(adm, store, DagKind(kind), context.get("params") or {}, utcnow(), open_king)
    if verdict.reasons:
        log.info("%s: work to do, the sync runs:\n  %s", adm.id, "\n  ".join(verdict.reasons))
        return verdict.xcom()
    log.info(
        "%s: NOTHING TO DO. King reports no change since the last sync (%s); nothing failing or pending; "
        "the daily full read is done. The sync tasks are skipped.",
        adm.id,
        ", ".join(verdict.unchanged),
    )
    return None
