"""Builds one administration's DAGs from its validated config. Imported at DAG-parse time:
airflow.sdk, the catalog and the tasks' callables (king_qics.tasks, import-light: everything that
talks to an API is imported inside them, on the worker)."""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, MultipleCronTriggerTimetable
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

from king_qics import catalog, dag_docs
from king_qics.alerts.notifier import task_callbacks, watch
from king_qics.dag_params import (
    common_params,
    flag,
    invoices_param,
    keys_param,
    maintenance_params,
)
from king_qics.idle_gate import IdleGate
from king_qics.tasks.gate import check_for_work
from king_qics.tasks.invoices import export_invoices, report_invoices, select_invoices
from king_qics.tasks.maintenance import accept_invoices, accept_records
from king_qics.tasks.master_data import reconcile, sync_master_data

# Data errors are final (clearing the task retries the failing records); faults of the APIs are
# retried with exponential backoff.
RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=[
                "king_qics.errors.AuthenticationError",
                "king_qics.errors.ConfigurationError",
                "airflow.sdk.exceptions.AirflowFailException",
            ],
            action=RetryAction.FAIL,
            reason="credentials or configuration refused, or records rejected: retrying cannot help",
        ),
        RetryRule(exception="king_qics.errors.RecordValidationError", action=RetryAction.FAIL),
        RetryRule(
            exception="king_qics.errors.RecordsNotSynced",
            action=RetryAction.FAIL,
            reason="records rejected (the table above): the next run or clearing the task retries them",
        ),
        RetryRule(exception="king_qics.errors.TransientError", action=RetryAction.RETRY),
    ]
)


def default_args(pool: str, callbacks: dict | None = None) -> dict:
    return {
        **(callbacks or {}),
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
    """Cron expressions firing every ``interval_minutes`` from ``start`` up to and including ``end``:
    one per set of hours a minute fires in, so a short interval stays a few expressions (the DAG's
    timetable description, stored in a 1,000-character column, names each of them)."""
    start_h, start_m = (int(part) for part in start.split(":"))
    end_h, end_m = (int(part) for part in end.split(":"))
    hours_of_minute: dict[int, list[int]] = {}
    minute_of_day = start_h * 60 + start_m
    while minute_of_day <= end_h * 60 + end_m:
        hour, minute = divmod(minute_of_day, 60)
        hours_of_minute.setdefault(minute, []).append(hour)
        minute_of_day += interval_minutes
    minutes_of_hours: dict[str, list[int]] = {}
    for minute, hours in sorted(hours_of_minute.items()):
        minutes_of_hours.setdefault(_field(hours), []).append(minute)
    return [f"{_field(minutes)} {hours} * * *" for hours, minutes in minutes_of_hours.items()]


def _field(values: list[int]) -> str:
    """7,8,9,10 -> '7-10'; 0,15,30,45 -> '0-45/15'; 7,11,20 -> '7,11,20' (sorted, distinct)."""
    values = sorted(set(values))
    steps = {b - a for a, b in zip(values, values[1:], strict=False)}
    if len(values) > 2 and len(steps) == 1:
        (step,) = steps
        return f"{values[0]}-{values[-1]}" + ("" if step == 1 else f"/{step}")
    return ",".join(str(value) for value in values)


def _task(task_id: str, python_callable, trigger_rule: str = "all_success", **op_kwargs) -> PythonOperator:
    """One task calling ``python_callable(**op_kwargs, **context)``; its return value is the XCom.

    A PythonOperator rather than @task: the decorator inspects the callable's signature and copies
    the DAG's params once more per task, which made parsing 200 administrations about 45% slower
    (bench/RESULTS.md, DAG parse)."""
    return PythonOperator(
        task_id=task_id, python_callable=python_callable, op_kwargs=op_kwargs, trigger_rule=trigger_rule
    )


def _gate(task_id: str, python_callable, **op_kwargs) -> IdleGate:
    """A DAG's first task: its callable returns what the run has to do, or a falsy value when the
    run has nothing to do; then every task after it is skipped (no task process starts)."""
    return IdleGate(task_id=task_id, python_callable=python_callable, op_kwargs=op_kwargs)


def pool_name(adm, api: str) -> str:
    return catalog.pool_name(adm.id, api)


def _dag(
    adm,
    kind: str,
    *,
    description: str,
    interval_minutes: int,
    writes_to: str,
    doc_md: str,
    params: dict | None = None,
    config_path: str | None = None,
) -> DAG:
    """The conventions every DAG shares: the daily window schedule in Europe/Amsterdam, one run at a
    time, no catchup, retries with backoff, the pool of the API it writes to, params, tags."""
    direction = "king->qics" if writes_to == "qics" else "qics->king"
    return DAG(
        dag_id=catalog.dag_id(adm.id, kind),
        description=description,
        schedule=MultipleCronTriggerTimetable(
            *window_crons(adm.schedule.start, adm.schedule.end, interval_minutes), timezone=catalog.TIMEZONE
        ),
        start_date=None,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(
            pool_name(adm, writes_to), task_callbacks(config_path, adm.id) if config_path else None
        ),
        params={**common_params(), **(params or {})},
        tags=["king-qics-sync", f"administration:{adm.id}", f"direction:{direction}", kind.replace("_", "-")],
        doc_md=doc_md,
    )


def build_master_data_dag(adm, config_path: str) -> DAG:
    dag = _dag(
        adm,
        "master_data",
        description=f"King -> Qics master data of {adm.name}",
        interval_minutes=adm.schedule.interval_minutes,
        writes_to="qics",
        params={
            "reconcile": flag("Also compare King with Qics now (daily anyway); writes nothing"),
            "keys": keys_param(catalog.DagKind.MASTER_DATA),
        },
        doc_md=dag_docs.master_data(adm),
        config_path=config_path,
    )
    with dag:
        tasks = _entity_tasks(adm, config_path, catalog.DagKind.MASTER_DATA)
        # After the entity tasks, whatever their outcome, in the same Qics pool. A teardown only
        # because Airflow leaves teardowns out of the DAG run's state: a failed entity task still
        # makes the run fail, and a reconciliation never does.
        reconciliation = _task(
            "reconcile",
            reconcile,
            config_path=config_path,
            administration_id=adm.id,
            entities=list(tasks),
        )
        list(tasks.values()) >> reconciliation.as_teardown()
    return dag


def build_projects_employees_dag(adm, config_path: str) -> DAG:
    dag = _dag(
        adm,
        "projects_employees",
        description=f"King -> Qics employees and projects of {adm.name}",
        interval_minutes=adm.projects_employees_interval_minutes,
        writes_to="qics",
        params={"keys": keys_param(catalog.DagKind.PROJECTS_EMPLOYEES)},
        doc_md=dag_docs.projects_employees(adm),
        config_path=config_path,
    )
    with dag:
        tasks = _entity_tasks(adm, config_path, catalog.DagKind.PROJECTS_EMPLOYEES)
        # customers synced before their manager (DEB.MEDEWDEC) existed in Qics get the link now
        managers = _task(
            catalog.CUSTOMER_MANAGERS,
            sync_master_data,
            trigger_rule="all_done",
            config_path=config_path,
            administration_id=adm.id,
            entity="customers",
            pending_only=True,
        )
        tasks["employees"] >> managers
    return dag


def _entity_tasks(adm, config_path: str, kind: catalog.DagKind) -> dict[str, PythonOperator]:
    """One task per entity of the catalog that this DAG syncs, after the entities it looks up, and
    all after the DAG's gate (``catalog.GATE_TASK``)."""
    tasks = {}
    entities = catalog.entities_of(kind)
    for entity in entities:
        # all_done: one rejected VAT code must not hold back every item and customer; a record
        # whose lookup is not synced fails alone ("not synced (yet)") and is retried next run.
        tasks[entity.name] = _task(
            entity.name,
            sync_master_data,
            trigger_rule="all_done" if entity.after else "all_success",
            config_path=config_path,
            administration_id=adm.id,
            entity=entity.name,
        )
    for entity in entities:
        for name in entity.after:
            tasks[name] >> tasks[entity.name]
    # An idle run (most of them) ends at the gate: King unchanged, nothing failing, pending or due.
    gate = _gate(
        catalog.GATE_TASK, check_for_work, config_path=config_path, administration_id=adm.id, kind=kind.value
    )
    gate >> [tasks[entity.name] for entity in entities if not entity.after]
    return tasks


def build_invoice_export_dag(adm, config_path: str) -> DAG:
    dag = _dag(
        adm,
        "invoice_export",
        description=f"Qics -> King invoice export of {adm.name}",
        interval_minutes=adm.schedule.interval_minutes,
        writes_to="king",
        params={"invoices": invoices_param()},
        doc_md=dag_docs.invoice_export(adm),
        config_path=config_path,
    )
    with dag:
        ids = {"config_path": config_path, "administration_id": adm.id}
        select = _gate("select", select_invoices, **ids)  # nothing new and nothing open: idle
        export = _task("export", export_invoices, **ids)
        report = _task("report", report_invoices, trigger_rule="all_done", **ids)
        select >> export >> report
    return dag


def build_maintenance_dag(administrations, config_path: str) -> DAG:
    """Manual only, one for every administration (param ``administration``): accept failing
    records or invoices as is. It touches the state store only: no API pool."""
    dag = DAG(
        dag_id=catalog.MAINTENANCE_DAG_ID,
        description="Maintenance (manual): accept failing records or invoices of an administration as is",
        schedule=None,
        start_date=None,
        catchup=False,
        max_active_runs=1,
        default_args={"owner": "king-qics-sync", "retries": 0},  # a person triggers again
        params=maintenance_params([adm.id for adm in administrations if adm.enabled]),
        tags=["king-qics-sync", "maintenance"],
        doc_md=dag_docs.maintenance(),
    )
    with dag:
        _task("accept_records", accept_records, config_path=config_path)
        _task("accept_invoices", accept_invoices, config_path=config_path)
    return dag


def build_dags(adm, config_path: str, only: str | None = None) -> list[DAG]:
    """All DAGs of one administration; ``only``: just the one with this DAG id (none if it is not
    one of them), as a task process needs (dags/king_qics.py, Airflow's parsing context)."""
    builders = {
        catalog.DagKind.MASTER_DATA: build_master_data_dag,
        catalog.DagKind.PROJECTS_EMPLOYEES: build_projects_employees_dag,
        catalog.DagKind.INVOICE_EXPORT: build_invoice_export_dag,
    }
    return [
        build(adm, config_path)
        for kind, build in builders.items()
        if only is None or only == catalog.dag_id(adm.id, kind)
    ]


def build_watchdog_dag(config_path: str, interval_minutes: int = 10) -> DAG:
    """The alerts' own checks (king_qics.alerts.watchdog), every ``interval_minutes`` round the
    clock, for every administration: a stalled invoice export, invoices waiting, the daily digest."""
    dag = DAG(
        dag_id=catalog.WATCHDOG_DAG_ID,
        description="King <-> Qics alerts: stalled invoice export, invoices waiting, daily digest",
        schedule=f"*/{interval_minutes} * * * *",
        start_date=None,
        catchup=False,
        max_active_runs=1,
        default_args={"owner": "king-qics-sync", "retries": 1, "retry_delay": timedelta(minutes=1)},
        tags=["king-qics-sync", "alerts"],
        doc_md="Checks what the sync's own runs cannot tell: no invoice export through the ledger for "
        "`stalled_minutes` inside the window, invoices not booked for `invoices_waiting_hours`, and "
        "sends the `daily_digest`; each condition once, and once more when it clears (README *Alerts*).",
    )
    with dag:
        _task("watch", watch, config_path=config_path)
    return dag


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
