"""A task failed after its last attempt (Airflow calls on_failure_callback only then; a retry calls
on_retry_callback, which the DAGs leave empty), or ran through: what is told, and what is kept."""

from __future__ import annotations

import hashlib
import logging
import re
import traceback

from king_qics import catalog
from king_qics.alerts import advice
from king_qics.alerts.compose import Message, counts_line, item_lines, local
from king_qics.alerts.items import failing_invoices, failing_records
from king_qics.errors import AuthenticationError, RecordsNotSynced, TransientError

log = logging.getLogger(__name__)

EXPORT_FLOW = "invoice_export"
# The invoice export's report task fails for what select or export already told.
REPEATS_UPSTREAM = {(catalog.DagKind.INVOICE_EXPORT.value, "report")}


def dag_kind(dag_id: str) -> str:
    return dag_id.rsplit("__", 1)[-1]


def airflow_base() -> str:
    """The Airflow UI's URL (``[api] base_url``, as the task log links use it)."""
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback="http://localhost:8080/").rstrip("/")


def page_url(administration_id: str) -> str:
    from king_qics.ui.plugin import URL_PREFIX

    return f"{airflow_base()}{URL_PREFIX}/administrations/{administration_id}"


def _load(config_path: str, administration_id: str):
    from king_qics.tasks import administration, state_store

    adm, config = administration(config_path, administration_id)
    return adm, state_store(config)


def _counts(ti) -> dict | None:
    try:
        return ti.xcom_pull(task_ids=ti.task_id, key="counts")
    except Exception:  # noqa: BLE001 - a message without counts beats no message
        log.warning("the counts of %s could not be read", ti.task_id, exc_info=True)
        return None


def credential_system(exc: BaseException) -> str:
    """Which API refused the credentials: the hook the error was raised in, else its wording."""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        name = frame.f_code.co_filename.replace("\\", "/")
        if "/hooks/king/" in name:
            return "king"
        if "/hooks/qics/" in name:
            return "qics"
    return "king" if str(exc).startswith("King") else "qics"


def on_task_failed(config_path: str, administration_id: str, context: dict) -> None:
    from king_qics.alerts.channels import send
    from king_qics.state.alerts import AlertState

    ti, exc = context["ti"], context.get("exception")
    adm, store = _load(config_path, administration_id)
    kind = dag_kind(ti.dag_id)
    counts = _counts(ti)
    state = AlertState(store, adm.id)
    if kind == EXPORT_FLOW and ti.task_id == "export" and counts is not None:
        state.ran_through(EXPORT_FLOW)  # through the ledger; some invoices failed
    notifications = adm.notifications
    if not notifications.has_channel or (kind, ti.task_id) in REPEATS_UPSTREAM:
        return
    if isinstance(exc, AuthenticationError) and notifications.credentials:
        system = credential_system(exc)
        message = credentials_message(adm, ti, exc, system)
        if state.open(f"credentials:{system}", message.subject):
            _send_or_reopen(state, f"credentials:{system}", message, notifications, context)
        else:
            log.info("credentials of %s (%s) already told; not again", adm.id, system)
        return
    if not notifications.task_failed:
        return
    told = [name for name in state.holding() if name.startswith("credentials:")]
    if told:  # its records fail for want of what the refused API would have synced first
        log.info("%s failed while %s is told (credentials); not told on its own", ti.task_id, told)
        return
    message, items = task_failed_message(adm, store, ti, exc, counts, notifications.max_items)
    condition = f"task:{kind}:{ti.task_id}"
    if state.tell(condition, fingerprint(message.subject, items)):
        try:
            send(message, notifications, context)
        except Exception:
            state.clear(condition)  # not told: the next failure tells it
            raise
    else:
        log.info("%s failed as last told (the same records and reasons): not told again", ti.task_id)


_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


def fingerprint(subject: str, items: list) -> str:
    """What a failure told: the subject and each item's reason, without the moments reasons quote
    ("when payment_conditions were last read, 2026-12-02 05:33"), which change with every run."""
    lines = [subject, *(f"{item.what}: {item.reason}" for item in items)]
    return hashlib.sha256(_MOMENT.sub("<time>", "\n".join(lines)).encode()).hexdigest()


def _send_or_reopen(state, condition: str, message: Message, notifications, context: dict) -> None:
    from king_qics.alerts.channels import send

    opened = state.holding()[condition].opened_at
    try:
        send(message, notifications, context)
    except Exception:
        state.undo_open(condition, opened)
        raise


def on_task_succeeded(config_path: str, administration_id: str, context: dict) -> None:
    """A task ran through: the export's heartbeat; credentials it used work again ("resolved");
    its own last failure is over (the next one is told again)."""
    from king_qics.alerts.channels import send
    from king_qics.state.alerts import AlertState
    from king_qics.tasks import administration, state_store

    ti = context["ti"]
    adm, config = administration(config_path, administration_id)
    kind = dag_kind(ti.dag_id)
    is_export = kind == EXPORT_FLOW and ti.task_id == "export"
    if not is_export and not adm.notifications.has_channel:
        return  # nothing to keep, nothing that could be told
    state = AlertState(state_store(config), adm.id)
    if is_export:
        state.ran_through(EXPORT_FLOW)
    holding = state.holding()
    if not holding:
        return
    state.clear(f"task:{kind}:{ti.task_id}")
    systems = ("qics",) if (kind, ti.task_id) == (EXPORT_FLOW, "select") else ("king", "qics")
    for system in systems:
        if f"credentials:{system}" not in holding:
            continue
        row = state.resolve(f"credentials:{system}")
        if row is not None and adm.notifications.has_channel:
            name = "King" if system == "king" else "Qics"
            message = Message(
                "credentials_resolved",
                adm.id,
                f"{adm.id}: resolved: {name} accepts the credentials again",
                links=[("King <-> Qics page", page_url(adm.id))],
            )
            message.add("Administration", f"{adm.name} ({adm.id})")
            message.add(
                "Resolved",
                f"{row.summary}",
                f"Told {local(row.opened_at)}; {ti.dag_id}.{ti.task_id} ran through at {local(_now())}.",
            )
            send(message, adm.notifications, context)


def _now():
    from king_qics.state import utcnow

    return utcnow()


def _where(adm, ti) -> list[str]:
    return [
        f"Administration: {adm.name} ({adm.id})",
        f"DAG: {ti.dag_id}",
        f"Task: {ti.task_id} (run {ti.run_id}, try {ti.try_number})",
    ]


def _links(adm, ti) -> list[tuple[str, str]]:
    return [("Task log", ti.log_url), ("King <-> Qics page", page_url(adm.id))]


def credentials_message(adm, ti, exc: BaseException, system: str) -> Message:
    if system == "qics":
        what = advice.qics_reauthorize(adm.qics_conn_id, *connection_client(adm.qics_conn_id))
        if "invalid_grant" not in str(exc) and "refresh token" not in str(exc):
            what = advice.qics_refused(adm.qics_conn_id)
        subject = f"{adm.id}: Qics refuses the sync's credentials: a person must act"
    else:
        what = advice.king_refused(adm.king_conn_id, str(exc))
        subject = f"{adm.id}: King refuses the partner key or environment code: a person must act"
    message = Message("credentials", adm.id, subject, links=_links(adm, ti))
    message.add("", *_where(adm, ti))
    message.add("What happened", str(exc))
    message.add("What to do", *what.split("\n"))
    message.add(
        "Until then",
        "Every task of this administration that needs this API fails the same way; this is told once, "
        "and once more when it works again.",
    )
    return message


def connection_client(conn_id: str) -> tuple[str | None, str | None]:
    """The connection's host and client id (public identifiers, never its secrets)."""
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - the message names the connection instead
        return None, None
    host = conn.host or None
    if host and "://" not in host:
        host = f"{conn.schema or 'https'}://{host}"
    return host, conn.extra_dejson.get("client_id") or conn.login or None


def task_failed_message(adm, store, ti, exc, counts: dict | None, limit: int) -> tuple[Message, list]:
    """The message of a failed task, and the failing items it lists."""
    kind = dag_kind(ti.dag_id)
    if kind == EXPORT_FLOW and ti.task_id == "export":
        items = failing_invoices(store, adm.id)
        noun = f"invoice{'' if len(items) == 1 else 's'} (not booked in King)"
    elif ti.task_id in catalog.ENTITY_TASKS:
        entity = catalog.ENTITY_TASKS[ti.task_id][1]
        items = failing_records(store, adm.id, entity)
        noun = f"{entity} record{'' if len(items) == 1 else 's'} (not in Qics as King has them)"
    else:
        items, noun = [], ""
    summary = str(exc) if isinstance(exc, RecordsNotSynced) else type(exc).__name__
    message = Message("task_failed", adm.id, f"{adm.id}: {kind}.{ti.task_id} failed: {summary}")
    message.links = _links(adm, ti)
    message.add("", *_where(adm, ti))
    message.add("Counts", counts_line(counts))
    if items:
        message.add(f"Failing now: {len(items)} {noun}", *item_lines(items, limit))
    if not isinstance(exc, RecordsNotSynced) and exc is not None:
        message.add("Error", str(exc) or type(exc).__name__)
    steps = []
    for found in dict.fromkeys(advice.for_reason(item.reason) for item in items):
        steps.append(f"{found.symptom}: {found.do}")
    if isinstance(exc, TransientError):
        steps.append(f"{advice.API_DOWN.symptom}: {advice.API_DOWN.do}")
    if not steps:
        steps.append(
            "Read the task log (link below); the README's operations guide has a troubleshooting table. "
            "Clear the task once the cause is fixed."
        )
    message.add("What to do", *steps)
    return message, items
