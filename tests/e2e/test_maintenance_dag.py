"""The maintenance DAG (manual only) in real Airflow (dag.test) against both sandboxes: failing
records and invoices accepted as is with a note (kept and shown), and a new Qics token chain from
a refresh token given in the trigger form (masked: never in a log, an XCom or the store in clear).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from urllib.parse import parse_qs, urlsplit

import requests
import sqlalchemy as sa

from king_qics.hooks.king import KingFinanceHook
from king_qics.state import INVOICES, Acceptances, InvoiceLedger, SyncedRecords, oauth_tokens
from sandbox import universe
from tests.king_records import update_record

MAINTENANCE = "king_qics__noord__maintenance"
MASTER_DATA = "king_qics__noord__master_data"
INVOICE_EXPORT = "king_qics__noord__invoice_export"
NOTE = "BETCOND 9 is added in King in January; accepted until then"


def test_a_failing_record_accepted_as_is_stays_off_the_list_until_it_fails_otherwise_or_syncs(
    run_dag, sandbox, state_store
):
    _, states = run_dag(MASTER_DATA)
    assert states["customers"] == "failed"  # 10006: BETCOND 9 does not exist in King
    records = SyncedRecords(state_store, "noord", "customers")
    reason = records.failing()["10006"]

    _, states = run_dag(MAINTENANCE, accept_records={"customers": ["10006"]}, note=NOTE)

    assert states == {
        "accept_records": "success",
        "accept_invoices": "skipped",
        "start_token_chain": "skipped",
    }
    assert records.failing() == {}
    (kept,) = Acceptances(state_store, "noord").of("customers").values()
    assert (kept.key, kept.reason, kept.note, kept.attempts) == ("10006", reason, NOTE, 1)

    _, states = run_dag(MASTER_DATA, full_refresh=True)  # read again, fails again the same way
    assert states["customers"] == "success" and records.failing() == {}
    assert "10006" in Acceptances(state_store, "noord").of("customers")

    with KingFinanceHook("king_noord", timeout=5) as king:  # fixed in King: it syncs, acceptance ends
        update_record(king, "DEB", "NR", 10006, {"BETCOND": 3})
    _, states = run_dag(MASTER_DATA)
    assert states["customers"] == "success"
    assert "10006" in records.qics_ids() and Acceptances(state_store, "noord").of("customers") == {}


def test_accepting_needs_a_note_and_a_record_that_is_failing(run_dag, sandbox, state_store):
    run_dag(MASTER_DATA)
    _, states = run_dag(MAINTENANCE, accept_records={"customers": ["10006"]}, note="")
    assert states["accept_records"] == "failed"
    _, states = run_dag(MAINTENANCE, accept_records={"customers": ["10001"]}, note=NOTE)
    assert states["accept_records"] == "failed"  # 10001 is synced, not failing
    assert set(SyncedRecords(state_store, "noord", "customers").failing()) == {"10006"}
    assert Acceptances(state_store, "noord").of("customers") == {}


def test_an_invoice_accepted_as_is_is_never_booked_and_a_booked_one_cannot_be(run_dag, sandbox, state_store):
    _, states = run_dag(INVOICE_EXPORT)
    assert states["export"] == "failed"  # N2026005: its customer is no King debtor
    ledger = InvoiceLedger(state_store, "noord")

    _, states = run_dag(MAINTENANCE, accept_invoices=["N2026005", "N2026001"], note="booked by hand")

    assert states["accept_invoices"] == "failed"  # N2026001 is booked: refused
    assert ledger.get(6).state == "skipped" and ledger.get(6).note.startswith(
        "accepted as is: booked by hand"
    )
    assert ledger.get(1).state == "marked"
    kept = Acceptances(state_store, "noord").of(INVOICES)
    assert set(kept) == {"N2026005"} and "debtor 19999" in kept["N2026005"].reason
    sandbox.reset_calls()
    _, states = run_dag(INVOICE_EXPORT)
    assert states["export"] == "success" and "CreateJournaalpost" not in sandbox.calls("king")


def reauthorize(sandbox) -> str:
    """What a person does in QicsMilestones: authorize the OAuth application again; the new
    refresh token (from the authorization code)."""
    answer = requests.get(
        f"{sandbox.qics_url}/api/oauth2/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": universe.QICS_CLIENT_ID,
            "redirect_uri": universe.QICS_REDIRECT_URI,
        },
        allow_redirects=False,
        timeout=5,
    )
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    grant = requests.post(
        f"{sandbox.qics_url}/api/oauth2/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": universe.QICS_REDIRECT_URI,
            "client_id": universe.QICS_CLIENT_ID,
            "client_secret": universe.QICS_CLIENT_SECRET,
        },
        timeout=5,
    ).json()
    return grant["refresh_token"]


def test_a_new_token_chain_from_the_trigger_form_without_shell_access_and_never_shown(
    run_dag, sandbox, state_store, caplog, capfd
):
    run_dag(MASTER_DATA)
    sandbox.admin("qics", "POST", "oauth/revoke")  # the chain is broken (revoked in Qics)
    sandbox.admin("qics", "POST", "oauth/expire")
    from king_qics.hooks.qics.oauth import clear_process_cache

    clear_process_cache()
    with KingFinanceHook("king_noord", timeout=5) as king:  # something to write to Qics
        update_record(king, "DEB", "NR", 10002, {"PLAATS": "Amersfoort"})
    _, states = run_dag(MASTER_DATA)
    assert states["customers"] == "failed"  # invalid_grant: a person must re-authorize
    assert customers_city(sandbox, "10002") != "Amersfoort"

    new_token = reauthorize(sandbox)
    caplog.set_level(logging.DEBUG)
    capfd.readouterr()
    clear_process_cache()
    dag_run, states = run_dag(MAINTENANCE, qics_refresh_token=new_token)

    assert states == {
        "accept_records": "skipped",
        "accept_invoices": "skipped",
        "start_token_chain": "success",
    }
    spent = {t["token"]: t["status"] for t in sandbox.state("qics")["oauth"]["refresh_tokens"]}
    assert spent[new_token] == "used"  # spent at once: what the run's params keep is dead
    result = dag_run.get_task_instance("start_token_chain").xcom_pull(task_ids="start_token_chain")
    assert result == {"connection": "qics_sandbox", "administrations": ["noord", "zuid"], "rotated": True}
    logged = capfd.readouterr().out + "\n".join(r.getMessage() for r in caplog.records)
    assert "new token chain" in logged and new_token not in logged
    assert new_token not in json.dumps(result)
    with state_store.engine.connect() as conn:
        stored = conn.execute(sa.select(oauth_tokens)).all()
    assert stored and all(new_token not in json.dumps([str(v) for v in row]) for row in stored)

    # Airflow's metadata database has it in one place only: the run's conf (Airflow keeps a run's
    # params with the run), where it is spent (above)
    assert tables_holding(new_token) == ["dag_run"]

    clear_process_cache()
    run_dag(MASTER_DATA)  # the connection itself was not touched
    assert customers_city(sandbox, "10002") == "Amersfoort"


def customers_city(sandbox, code: str) -> str:
    records = sandbox.state("qics")["entities"]["CustomerCompany"]
    return next(
        r["VisitAddressCity"]
        for r in records
        if str(r["CustomerCode"]) == code and str(r["CompanyId"]) == "1"
    )


def tables_holding(text: str) -> list[str]:
    """The tables of Airflow's (SQLite) metadata database with ``text`` in any row."""
    from airflow.configuration import conf

    path = conf.get("database", "sql_alchemy_conn").removeprefix("sqlite:///")
    found = []
    with sqlite3.connect(path) as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            rows = db.execute(f'SELECT * FROM "{table}"').fetchall()  # noqa: S608 - names from the db
            values = (
                v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for r in rows for v in r
            )
            if any(text in value for value in values):
                found.append(table)
    return found
