"""The maintenance DAG's tasks (manual only, one DAG for every administration): accept failing
records or invoices of the administration in the params as is, with a note. Each task is skipped
when its params are empty. (A new Qics token chain is started from the King <-> Qics page, never
from a trigger form: Airflow keeps a run's params.)"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from king_qics.log_tables import reason_table
from king_qics.tasks import administration, state_store

log = logging.getLogger(__name__)

ACCEPT_LEASE = timedelta(minutes=10)  # an acceptance touches the state store only


def _skip(why: str):
    from airflow.sdk.exceptions import AirflowSkipException

    return AirflowSkipException(why)


def _fail(why: str):
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(why)


def _note(params: dict) -> str:
    note = str(params.get("note") or "").strip()
    if not note:
        raise _fail("a note is required: why is it accepted as is? (it is kept and shown with it)")
    return note


def _administration_id(params: dict) -> str:
    chosen = str(params.get("administration") or "").strip()
    if not chosen:
        raise _fail("choose the administration (administration) whose failures are accepted as is")
    return chosen


def _who(context: dict) -> str | None:
    dag_run = context.get("dag_run")
    return getattr(dag_run, "triggering_user_name", None) if dag_run is not None else None


def accept_records(config_path: str, **context) -> dict:
    """``accept_records`` (entity -> King keys): off the failing list, with the note."""
    from king_qics.state import Acceptances, NotAcceptable

    params = context.get("params") or {}
    named = {
        e: [str(k).strip() for k in keys if str(k).strip()]
        for e, keys in (params.get("accept_records") or {}).items()
    }
    named = {entity: keys for entity, keys in named.items() if keys}
    if not named:
        raise _skip("no records named (accept_records)")
    note = _note(params)
    adm, config = administration(config_path, _administration_id(params))
    acceptances = Acceptances(state_store(config), adm.id)
    done, refused = {}, {}
    for entity, keys in sorted(named.items()):
        for key in keys:
            try:
                reason = acceptances.accept_record(
                    entity, key, note, by=_who(context), run_id=context.get("run_id")
                )
                done[f"{entity} {key}"] = f"accepted as is; was failing: {reason}"
            except NotAcceptable as exc:
                refused[f"{entity} {key}"] = f"refused: {exc}"
    return _result(adm.id, "record", done, refused)


def accept_invoices(config_path: str, **context) -> dict:
    """``accept_invoices`` (invoice numbers): never booked by this program, with the note."""
    from king_qics.state import Acceptances, NotAcceptable

    params = context.get("params") or {}
    numbers = sorted({str(n).strip() for n in params.get("accept_invoices") or [] if str(n).strip()})
    if not numbers:
        raise _skip("no invoices named (accept_invoices)")
    note = _note(params)
    adm, config = administration(config_path, _administration_id(params))
    acceptances = Acceptances(state_store(config), adm.id)
    token = hashlib.sha256(f"maintenance:{context.get('run_id')}".encode()).hexdigest()[:32]
    done, refused = {}, {}
    for number in numbers:
        try:
            reason = acceptances.accept_invoice(
                number, note, token=token, lease=ACCEPT_LEASE, by=_who(context), run_id=context.get("run_id")
            )
            done[number] = f"accepted as is, not booked; was: {reason}"
        except NotAcceptable as exc:
            refused[number] = f"refused: {exc}"
    return _result(adm.id, "invoice", done, refused)


def _result(administration_id: str, what: str, done: dict, refused: dict) -> dict:
    table = reason_table({**done, **refused}, key=what, reason="what happened")
    if refused:
        log.error("%s accepted as is:\n%s", administration_id, table)
        raise _fail(f"{len(refused)} of {len(done) + len(refused)} not accepted (the table above)")
    log.info("%s accepted as is:\n%s", administration_id, table)
    return {"accepted": sorted(done)}
