"""The manual-only DAG ``king_qics__preflight``: the go-live checks (king_qics.preflight), one task
per administration so each shows its own result. Imported at DAG-parse time: airflow.sdk and the
task's callable only."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param

from king_qics.catalog import PREFLIGHT_DAG_ID as DAG_ID
from king_qics.dag_factory import RETRY_POLICY, _task, pool_name
from king_qics.dag_params import JSON_SCHEMA_DRAFT, flag
from king_qics.tasks.preflight import preflight

DOC = """
### King <-> Qics preflight (before going live)

Checks every guess the sync makes about the real King Cloudswitch and QicsMilestones services
against them, for each administration (`administration`: one id, or `all`): a King session,
GetAdmInfo and the period dates, every table and field the mappings read, the booking look-up, the
sales journal, the configured accounts; a Qics token, the company, the invoice query as the export
sends it, one invoice's PDF. Each task logs one row per check (`ok` / `differs: ...` / `unknown`,
with the wire-profile setting or docs/sandboxes.md behaviour row it verifies) and fails when a check that
would stop the sync differs. Read-only, except with `write_probe` and a test `journal`: one small
booking with a PDF is made there, read back and deleted. README "Going live".
"""


def build_preflight_dag(administrations, config_path: str) -> DAG:
    ids = [adm.id for adm in administrations if adm.enabled]
    dag = DAG(
        dag_id=DAG_ID,
        description="Go-live checks of King and Qics for each administration (manual)",
        schedule=None,
        start_date=None,
        catchup=False,
        max_active_runs=1,
        default_args={
            "owner": "king-qics-sync",
            "retries": 0,  # a check is read again by triggering again
            "retry_policy": RETRY_POLICY,
            "execution_timeout": timedelta(minutes=30),
        },
        params={
            "administration": Param(
                "all",
                type="string",
                enum=["all", *ids],
                description="The administration to check (or all)",
                **{"$schema": JSON_SCHEMA_DRAFT},
            ),
            "write_probe": flag("Also book, read back and delete one test entry (needs journal)"),
            "journal": Param(
                None,
                type=["null", "integer"],
                description="The test journal (DAGBOEK.NR) of the write probe",
                **{"$schema": JSON_SCHEMA_DRAFT},
            ),
        },
        tags=["king-qics-sync", "preflight"],
        doc_md=DOC,
    )
    with dag:
        for adm in administrations:
            if adm.enabled:  # in the King pool: the write probe writes to King; King calls stay serial
                task = _task(
                    f"preflight_{adm.id}", preflight, config_path=config_path, administration_id=adm.id
                )
                task.pool = pool_name(adm, "king")
    return dag
