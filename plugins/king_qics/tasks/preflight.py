"""The preflight DAG's task: one administration's go-live checks (king_qics.preflight)."""

from __future__ import annotations

import logging

from king_qics.errors import RecordsNotSynced
from king_qics.tasks import administration, publish_counts

log = logging.getLogger(__name__)


def preflight(config_path: str, administration_id: str, **context) -> dict:
    """The go-live checks of one administration; skipped when the run's ``administration`` param
    names another one. Fails (the table is the log) when a check that would stop the sync differs."""
    from airflow.sdk.exceptions import AirflowSkipException

    from king_qics.preflight import failed, table
    from king_qics.preflight.run import preflight as run_preflight

    params = context.get("params") or {}
    if params.get("administration", "all") not in ("all", administration_id):
        raise AirflowSkipException(f"this run checks {params.get('administration')!r}")
    adm, config = administration(config_path, administration_id)
    journal = params.get("journal") if params.get("write_probe") else None
    if params.get("write_probe") and journal in (None, ""):
        raise RecordsNotSynced("write_probe needs a test journal: set the journal param (DAGBOEK.NR)")
    checks = run_preflight(adm, config, probe_journal=int(journal) if journal not in (None, "") else None)
    log.info("%s preflight:\n%s", adm.id, table(checks))
    stopping = failed(checks)
    publish_counts(context, {"checks": len(checks), "would_stop_the_sync": len(stopping)})
    if stopping:
        names = ", ".join(f"{c.api} {c.name}" for c in stopping)
        raise RecordsNotSynced(f"{len(stopping)} preflight check(s) of {adm.id} would stop the sync: {names}")
    return {"checks": [check.__dict__ for check in checks]}
