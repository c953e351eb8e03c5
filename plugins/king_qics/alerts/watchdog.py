"""The checks that run on their own schedule (the DAG king_qics__alerts), whatever the sync's DAGs
do: a stalled invoice export, invoices waiting too long, and the daily digest. Each condition is
told once when it starts to hold and once ("resolved") when it clears; the state store keeps which
hold (king_qics.state.alerts).

Why not Airflow's Deadline Alerts: a deadline belongs to a DAG run that exists and measures how
long it takes (from its logical date or queue time). A stalled flow is mostly one whose runs do not
exist (the DAG paused, the scheduler or the pool starved) or end at once (refused credentials):
no run misses a deadline. And a deadline is told per run, never "resolved"."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta

from king_qics.alerts.compose import Message, item_lines, local
from king_qics.alerts.items import failing_invoices, failing_records, waiting_invoices
from king_qics.alerts.task_events import EXPORT_FLOW, airflow_base, page_url
from king_qics.catalog import AMSTERDAM, DagKind, dag_id

log = logging.getLogger(__name__)

STALLED = "stalled"
WAITING = "invoices_waiting"
DIGEST = "digest"


def watch(config_path: str, **context) -> dict:
    """Every enabled administration with a channel: the three checks; what was told, per administration."""
    from king_qics.config import load_administrations
    from king_qics.state import utcnow
    from king_qics.tasks import state_store

    config = load_administrations(config_path)
    store = state_store(config)
    now = utcnow()
    told: dict[str, list[str]] = {}
    unsent: list[str] = []
    for adm in config.administrations:
        if not adm.enabled or not adm.notifications.has_channel:
            continue
        told[adm.id] = []
        for check in (check_stalled, check_waiting, check_digest):
            try:
                told[adm.id] += check(adm, store, now, context)
            except Exception:  # one channel down must not silence the other administrations
                log.exception("%s: %s could not tell what it found", adm.id, check.__name__)
                unsent.append(f"{adm.id} ({check.__name__})")
        log.info("%s: %s", adm.id, ", ".join(told[adm.id]) or "nothing to tell")
    if unsent:
        raise RuntimeError(f"alerts not sent (told again by the next check): {', '.join(unsent)}")
    return told


def _at(day, hh_mm: str) -> datetime:
    hour, minute = (int(part) for part in hh_mm.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=AMSTERDAM)


def _tell_opened(
    state, condition: str, message: Message, notifications, context: dict, now: datetime
) -> bool:
    from king_qics.alerts.channels import send

    if not state.open(condition, message.subject, now):
        return False
    try:
        send(message, notifications, context)
    except Exception:
        state.undo_open(condition, now)
        raise
    return True


def _tell_resolved(adm, row, what: str, context: dict, now: datetime) -> None:
    from king_qics.alerts.channels import send

    message = Message(f"{row.condition}_resolved", adm.id, f"{adm.id}: resolved: {what}")
    message.add("Administration", f"{adm.name} ({adm.id})")
    message.add(
        "Resolved", row.summary or row.condition, f"Told {local(row.opened_at)}; clear at {local(now)}."
    )
    message.links = [("King <-> Qics page", page_url(adm.id))]
    send(message, adm.notifications, context)


def check_stalled(adm, store, now: datetime, context: dict) -> list[str]:
    """No invoice-export run through the ledger for ``stalled_minutes`` inside the daily window
    (counted from the window's start, so the night does not count)."""
    from king_qics.state.alerts import AlertState

    minutes = adm.notifications.stalled_minutes
    if not minutes:
        return []
    state = AlertState(store, adm.id)
    last = state.last_ran_through(EXPORT_FLOW)
    holding = state.holding().get(STALLED)
    if holding is not None:
        opened = _utc(holding.opened_at)
        if last is not None and last > opened:
            row = state.resolve(STALLED, now)
            if row is not None:
                _tell_resolved(
                    adm, row, f"the invoice export runs again (last through {local(last)})", context, now
                )
                return ["stalled resolved"]
        return []
    local_now = now.astimezone(AMSTERDAM)
    start, end = _at(local_now.date(), adm.schedule.start), _at(local_now.date(), adm.schedule.end)
    if not start <= local_now <= end + timedelta(minutes=1):
        return []
    reference = max(last, start) if last is not None else start
    if now - reference <= timedelta(minutes=minutes):
        return []
    export_dag = dag_id(adm.id, DagKind.INVOICE_EXPORT)
    since = f"since {local(last)}" if last is not None else "not since this store was created"
    message = Message(
        STALLED, adm.id, f"{adm.id}: the invoice export has not run through for {minutes}+ minutes"
    )
    message.add("Administration", f"{adm.name} ({adm.id})", f"DAG: {export_dag}")
    message.add(
        "What happened",
        f"No run of {export_dag} got through the invoice ledger {since} (now {local(now)}, inside the "
        f"window {adm.schedule.start}-{adm.schedule.end}): invoices processed in Qics are not booked "
        "in King.",
    )
    message.add(
        "What to do",
        "In the Airflow UI: is the DAG paused, are its runs failing (an earlier message names the task), "
        "or queued (its pool king_qics__<id>__king missing or full, or no scheduler/worker running)? See "
        "the README's troubleshooting rows 'invoices stopped arriving' and 'a task stuck in queued'.",
    )
    message.links = [("DAG", f"{airflow_base()}/dags/{export_dag}"), ("King <-> Qics page", page_url(adm.id))]
    return ["stalled"] if _tell_opened(state, STALLED, message, adm.notifications, context, now) else []


def check_waiting(adm, store, now: datetime, context: dict) -> list[str]:
    """Invoices the export knows but has not booked for longer than ``invoices_waiting_hours``."""
    from king_qics.state.alerts import AlertState

    hours = adm.notifications.invoices_waiting_hours
    if not hours:
        return []
    state = AlertState(store, adm.id)
    items = waiting_invoices(store, adm.id, timedelta(hours=hours), now)
    if not items:
        row = state.resolve(WAITING, now)
        if row is None:
            return []
        _tell_resolved(adm, row, f"no invoice waits longer than {hours:g} h any more", context, now)
        return ["waiting resolved"]
    message = Message(
        WAITING, adm.id, f"{adm.id}: {len(items)} invoice(s) not booked in King for over {hours:g} h"
    )
    message.add("Administration", f"{adm.name} ({adm.id})", f"DAG: {dag_id(adm.id, DagKind.INVOICE_EXPORT)}")
    message.add(f"{len(items)} invoices waiting", *item_lines(items, adm.notifications.max_items))
    message.add(
        "What to do",
        "Each line says why it waits: fix what it names, then trigger the invoice export with the param "
        "invoices naming them (or wait for the next run). The README's troubleshooting table has a row "
        "per reason.",
    )
    message.links = [("King <-> Qics page", page_url(adm.id))]
    return ["waiting"] if _tell_opened(state, WAITING, message, adm.notifications, context, now) else []


def check_digest(adm, store, now: datetime, context: dict) -> list[str]:
    """Once a day after ``daily_digest`` (Amsterdam): everything failing or waiting now."""
    from king_qics.alerts.channels import send
    from king_qics.state.alerts import AlertState

    at = adm.notifications.daily_digest
    if not at:
        return []
    due = _at(now.astimezone(AMSTERDAM).date(), at)
    state = AlertState(store, adm.id)
    if now < due or not state.claim_once(DIGEST, due, now):
        return []
    limit = adm.notifications.max_items
    records = failing_records(store, adm.id)
    invoices = failing_invoices(store, adm.id)
    hours = adm.notifications.invoices_waiting_hours or 24
    failing = {item.what for item in invoices}
    waiting = [
        item
        for item in waiting_invoices(store, adm.id, timedelta(hours=hours), now)
        if item.what not in failing
    ]
    holding = {name: row for name, row in state.holding().items() if not name.startswith("task:")}
    message = Message(
        DIGEST,
        adm.id,
        f"{adm.id}: daily digest: {len(records)} records, {len(invoices)} invoices failing, "
        f"{len(waiting)} waiting",
    )
    message.add("Administration", f"{adm.name} ({adm.id})", f"As of {local(now)}")
    message.add(
        "Open alerts",
        *([f"{row.summary} (since {local(row.opened_at)})" for row in holding.values()] or ["none"]),
    )
    message.add(f"{len(records)} records failing", *(item_lines(records, limit) or ["none"]))
    message.add(f"{len(invoices)} invoices failing", *(item_lines(invoices, limit) or ["none"]))
    message.add(
        f"{len(waiting)} invoices waiting over {hours:g} h", *(item_lines(waiting, limit) or ["none"])
    )
    message.links = [("King <-> Qics page", page_url(adm.id))]
    try:
        send(message, adm.notifications, context)
    except Exception:
        state.undo_claim(DIGEST, now)
        raise
    return ["digest"]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
