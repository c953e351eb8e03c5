"""What the DAGs' tasks run (on the worker): open the hooks and the state store, run a sync flow,
log and return its counts, fail with a table of records and reasons when any record failed."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def administration(config_path: str, administration_id: str):
    from king_qics.config import load_administrations

    result = load_administrations(config_path)
    for adm in result.administrations:
        if adm.id == administration_id:
            return adm, result
    raise LookupError(f"administration {administration_id!r} is not (validly) configured in {config_path}")


def state_store(config):
    from king_qics.state import StateStore

    return StateStore.from_settings(getattr(config, "state_store_conn_id", None))


def sync_master_data(config_path: str, administration_id: str, entity: str, context: dict) -> dict:
    from airflow.sdk.exceptions import AirflowFailException

    from king_qics.hooks.king_finance import KingFinanceHook
    from king_qics.hooks.qics import QicsMilestonesHook
    from king_qics.sync.master_data import MasterDataSync

    adm, config = administration(config_path, administration_id)
    params = context.get("params") or {}
    store = state_store(config)
    with KingFinanceHook(adm.king_conn_id) as king:
        qics = QicsMilestonesHook(adm.qics_conn_id, state_store=store)
        try:
            report = MasterDataSync(adm, king, qics, store, run_id=context.get("run_id")).run(
                entity, full_refresh=bool(params.get("full_refresh")), dry_run=bool(params.get("dry_run"))
            )
        finally:
            qics.close()
    if report.failed:
        raise AirflowFailException(
            f"{report.failed} {entity} record(s) of administration {adm.id} were not synced "
            f"(the others were). They are retried by the next run; clearing this task retries them now.\n"
            f"{report.failure_table()}"
        )
    return report.counts()
