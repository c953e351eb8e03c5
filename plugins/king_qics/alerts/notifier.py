"""The notifiers the DAGs carry as task callbacks (dag_factory's default_args), and the callable of
the alerts' DAG. Imported at DAG parse time: airflow.sdk only; what they do is imported when they
run, on the worker."""

from __future__ import annotations

from airflow.sdk import BaseNotifier


class _TaskNotifier(BaseNotifier):
    """Knows its administration; the config (channels, what to send) is read when it runs."""

    def __init__(self, config_path: str, administration_id: str):
        super().__init__()
        self.config_path, self.administration_id = config_path, administration_id


class TaskFailedNotifier(_TaskNotifier):
    """on_failure_callback: Airflow calls it once, after the task's last attempt."""

    def notify(self, context) -> None:
        from king_qics.alerts.task_events import on_task_failed

        on_task_failed(self.config_path, self.administration_id, context)


class TaskRanThroughNotifier(_TaskNotifier):
    """on_success_callback: the export's heartbeat, and "resolved" for credentials told broken."""

    def notify(self, context) -> None:
        from king_qics.alerts.task_events import on_task_succeeded

        on_task_succeeded(self.config_path, self.administration_id, context)


def task_callbacks(config_path: str, administration_id: str) -> dict:
    """The callbacks of every task of an administration's DAGs (no on_retry_callback: a retry is
    not told)."""
    return {
        "on_failure_callback": [TaskFailedNotifier(config_path, administration_id)],
        "on_success_callback": [TaskRanThroughNotifier(config_path, administration_id)],
    }


def watch(config_path: str, **context) -> dict:
    """The task of the alerts' DAG (king_qics__alerts): king_qics.alerts.watchdog.watch."""
    from king_qics.alerts.watchdog import watch as run_checks

    return run_checks(config_path, **context)
