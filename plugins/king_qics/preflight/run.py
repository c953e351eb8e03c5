"""Run the preflight for one administration (the DAG task and the command both call this)."""

from __future__ import annotations

from king_qics.preflight import Check


def preflight(adm, config, *, probe_journal: int | None = None) -> list[Check]:
    """Every check of ``adm`` against the real services: King first, then Qics."""
    from king_qics.hooks.king import KingFinanceHook
    from king_qics.hooks.qics import QicsMilestonesHook
    from king_qics.preflight.king import king_checks
    from king_qics.preflight.qics import qics_checks
    from king_qics.state import StateStore

    store = StateStore.from_settings(config.state_store_conn_id)
    with KingFinanceHook(adm.king_conn_id) as king:
        checks = king_checks(adm, king, probe_journal=probe_journal)
    qics = QicsMilestonesHook(adm.qics_conn_id, token_store=store.tokens)
    try:
        checks += qics_checks(adm, qics)
    finally:
        qics.close()
    return checks
