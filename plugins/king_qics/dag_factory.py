"""Builds one administration's DAGs from its validated config. Imported at DAG-parse time:
only airflow.sdk and the config model here; everything that talks to an API runs inside tasks
(king_qics.tasks)."""

from __future__ import annotations

from datetime import timedelta
from itertools import groupby

from airflow.sdk import DAG, MultipleCronTriggerTimetable, Param, task
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

TIMEZONE = "Europe/Amsterdam"
MASTER_DATA_ORDER = {  # task -> upstream tasks (lookups first)
    "vat_codes": [],
    "payment_conditions": [],
    "cost_centers": [],
    "items": ["vat_codes"],
    "customers": ["vat_codes", "payment_conditions", "cost_centers"],
}

# Data errors are final (clearing the task retries the failing records); faults of the APIs are
# retried with exponential backoff.
RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=["king_qics.errors.AuthenticationError", "airflow.sdk.exceptions.AirflowFailException"],
            action=RetryAction.FAIL,
            reason="credentials refused or records rejected: retrying cannot help",
        ),
        RetryRule(exception="king_qics.errors.RecordValidationError", action=RetryAction.FAIL),
        RetryRule(exception="king_qics.errors.TransientError", action=RetryAction.RETRY),
    ]
)


def default_args(pool: str) -> dict:
    return {
        "owner": "king-qics-sync",
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=15),
        "retry_policy": RETRY_POLICY,
        "pool": pool,
        "execution_timeout": timedelta(hours=2),
    }


def window_crons(start: str, end: str, interval_minutes: int) -> list[str]:
    """Cron expressions firing every ``interval_minutes`` from ``start`` up to and including ``end``."""
    start_h, start_m = (int(part) for part in start.split(":"))
    end_h, end_m = (int(part) for part in end.split(":"))
    times = []
    minute_of_day = start_h * 60 + start_m
    while minute_of_day <= end_h * 60 + end_m:
        times.append(divmod(minute_of_day, 60))
        minute_of_day += interval_minutes
    crons = []
    for minute, group in groupby(sorted(times, key=lambda t: (t[1], t[0])), key=lambda t: t[1]):
        crons.append(f"{minute} {_hour_field([hour for hour, _ in group])} * * *")
    return crons


def _hour_field(hours: list[int]) -> str:
    """7,8,9,10 -> '7-10'; 7,11,15,19 -> '7,11,15,19'."""
    if len(hours) > 2 and hours == list(range(hours[0], hours[-1] + 1)):
        return f"{hours[0]}-{hours[-1]}"
    return ",".join(str(hour) for hour in hours)


def _params() -> dict:
    return {
        "full_refresh": Param(False, type="boolean", description="Re-read everything and compare with Qics"),
        "dry_run": Param(False, type="boolean", description="Log what would change; write nothing"),
    }


def pool_name(adm, api: str) -> str:
    return f"king_qics__{adm.id}__{api}"


def build_master_data_dag(adm, config_path: str) -> DAG:
    schedule = adm.schedule
    dag = DAG(
        dag_id=f"king_qics__{adm.id}__master_data",
        description=f"King -> Qics master data of {adm.name}",
        schedule=MultipleCronTriggerTimetable(
            *window_crons(schedule.start, schedule.end, schedule.interval_minutes), timezone=TIMEZONE
        ),
        start_date=None,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(pool_name(adm, "qics")),
        params=_params(),
        tags=["king-qics-sync", f"administration:{adm.id}", "direction:king->qics", "master-data"],
        doc_md=f"""
### King -> Qics master data: {adm.name}

Every {schedule.interval_minutes} minutes from {schedule.start} to {schedule.end} (Europe/Amsterdam),
reads King Finance (connection `{adm.king_conn_id}`) and writes new and changed records to
QicsMilestones company {adm.qics_company_id} (connection `{adm.qics_conn_id}`):
VAT codes, payment conditions and cost centers, then articles (items), then debtors (customers).
Only records whose mapped fields changed are written; deletions are never propagated.

Each task logs and returns counts (read, new, changed, unchanged, failed). A red task lists the
records Qics or the mapping rejected, with the reason; they are retried by every following run,
and clearing the task retries exactly those. Trigger with `full_refresh` to re-read and compare
everything (initial load, repair), or `dry_run` to see what would change without writing.
""",
    )
    with dag:
        tasks = {}
        for entity in MASTER_DATA_ORDER:
            tasks[entity] = task(task_id=entity)(_sync_master_data)(
                config_path=config_path, administration_id=adm.id, entity=entity
            )
        for entity, upstream in MASTER_DATA_ORDER.items():
            for name in upstream:
                tasks[name] >> tasks[entity]
    return dag


def _sync_master_data(config_path: str, administration_id: str, entity: str, **context) -> dict:
    from king_qics.tasks import sync_master_data

    return sync_master_data(config_path, administration_id, entity, context)


def build_dags(adm, config_path: str) -> list[DAG]:
    """All DAGs of one administration."""
    return [build_master_data_dag(adm, config_path)]


class ConfigurationError(ValueError):
    """An entry of include/administrations.yaml is invalid."""


class _InvalidConfigDag(DAG):
    """Stands in for broken config entries: Airflow reports its validation error as the DAG file's
    import error, while the valid administrations' DAGs are bagged as usual."""

    def validate(self):
        raise ConfigurationError(self.description)


def config_error_dag(config_path, errors: list) -> DAG:
    message = (
        f"{len(errors)} invalid administration(s) in {config_path}, their DAGs are not loaded: "
        + "; ".join(str(error) for error in errors)
    )
    return _InvalidConfigDag(dag_id="king_qics__invalid_config", description=message, schedule=None)
