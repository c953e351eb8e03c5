"""Alerts from real DAG runs (dag.test) against both sandboxes, received by a real SMTP server
(aiosmtpd, with a login) and a webhook receiver: exactly the expected messages, none for a retry,
one "resolved" when a condition clears, and no secret in any of them.

The sandboxes and connections run with the distinctive credentials of tests/reliability/
test_secrets.py, so a leaked partner key, environment code, client secret, token, SMTP password or
webhook URL is found by its text."""

from __future__ import annotations

import json
import os
import re
from html import unescape
from pathlib import Path

import pytest

from tests.e2e.alert_env import (
    SMTP_PASSWORD,
    WEBHOOK_PATH,
    SmtpServer,
    WebhookReceiver,
    parse_dags,
    run,
    write_config,
)
from tests.reliability.test_secrets import (
    CLIENT_SECRET,
    ENVIRONMENT_CODES,
    FIRST_REFRESH_TOKEN,
    PARTNER_KEY,
    leaks,
    secrets_fixture,
    set_connections,
)

RECIPIENTS = ["finance@kqs.example", "ops@kqs.example"]
ALL_DAY = {"schedule": {"start": "00:00", "end": "23:59", "interval_minutes": 15}}
NOTIFY = {
    "email_conn_id": "smtp_alerts",
    "email_to": RECIPIENTS,
    "stalled_minutes": None,
    "invoices_waiting_hours": None,
}
MASTER_DATA = "king_qics__noord__master_data"
INVOICE_EXPORT = "king_qics__noord__invoice_export"
WATCHDOG = "king_qics__alerts"
SECRETS = [
    PARTNER_KEY,
    *ENVIRONMENT_CODES.values(),
    CLIENT_SECRET,
    FIRST_REFRESH_TOKEN,
    SMTP_PASSWORD,
    WEBHOOK_PATH,
]


@pytest.fixture
def clear_of_midnight():
    """The stalled check counts from the start of today's window and the digest comes once a day:
    with the window from 00:00 and stalled_minutes 1, a test running across midnight (Amsterdam) or
    in its first minutes would see a new day. Such a test waits until 00:02 first."""
    import time

    import pendulum

    now = pendulum.now("Europe/Amsterdam")
    tomorrow = now.add(days=1).start_of("day")
    if tomorrow - now < pendulum.duration(minutes=8):
        time.sleep((tomorrow.add(minutes=2) - now).total_seconds())
    elif now - now.start_of("day") < pendulum.duration(minutes=2):
        time.sleep((now.start_of("day").add(minutes=2) - now).total_seconds())


@pytest.fixture
def smtp():
    server = SmtpServer()
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def webhook():
    receiver = WebhookReceiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def alerting(connections, state_store, smtp, webhook, monkeypatch, tmp_path, request):
    """The sandboxes with distinctive credentials, the SMTP and webhook connections, and a factory of
    DAGs parsed from a config whose notifications go to them; every received message is scanned
    for secrets at the end."""
    sandbox = connections
    sandbox.load(secrets_fixture())
    set_connections(monkeypatch)
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", json.dumps(smtp.connection()))
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_WEBHOOK", json.dumps(webhook.connection()))

    def dags(notifications: dict | None = None, **administrations: dict) -> dict:
        config = write_config(
            tmp_path / "administrations.yaml", administrations, {**NOTIFY, **(notifications or {})}
        )
        return parse_dags(config, monkeypatch)

    yield sandbox, dags
    keep_received(smtp, request.node.name)
    received = [mail.raw for mail in smtp.mails] + [json.dumps(hook["body"]) for hook in webhook.received]
    found = {index: leaks(text, SECRETS) for index, text in enumerate(received)}
    assert {index: hits for index, hits in found.items() if hits} == {}


def keep_received(smtp, test_name: str) -> None:
    """$KQS_ALERT_MAILDIR: every received e-mail as an .eml file (tools/alert_screenshot.py renders one)."""
    folder = os.environ.get("KQS_ALERT_MAILDIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for number, mail in enumerate(smtp.mails, start=1):
            (Path(folder) / f"{test_name[5:60]}-{number}-{mail.kind}.eml").write_text(
                mail.raw, encoding="utf-8"
            )


def text_of(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_a_task_failed_after_its_last_attempt_is_one_message_and_retries_send_nothing(
    alerting, smtp, webhook
):
    sandbox, dags = alerting
    fixture = secrets_fixture()
    debtors = fixture["king"]["administrations"][0]["tables"]["DEB"]
    next(d for d in debtors if d["NR"] == 10008)["NAAM"] = (
        "Zorggroep Bakker Thuiszorg en Wijkverpleging Noord-Holland B.V."
    )
    sandbox.load(fixture)  # Qics refuses a name over 50 characters
    dag_bag = dags({"webhook_conn_id": "alerts_webhook"})
    # VAT codes: Qics answers 500 to every attempt of the hook's first try, so Airflow retries the task
    sandbox.faults("qics", {"kind": "http_500", "count": 5, "operations": ["GET VatCode"]})
    dag_run, states = run(dag_bag, MASTER_DATA)
    assert states["vat_codes"] == "success" and dag_run.get_task_instance("vat_codes").try_number == 2
    assert states["customers"] == "failed"  # debtor 10006: payment condition 9 is not in King
    assert [(mail.kind, mail.to) for mail in smtp.mails] == [("task_failed", RECIPIENTS)]
    mail = smtp.mails[0]
    assert (
        mail.subject
        == "[king-qics] noord: master_data.customers failed: 2 customers records of noord not synced"
    )
    body = text_of(mail.html)
    assert "Administration: Adviesbureau Noord B.V. (noord)" in body
    assert f"DAG: {MASTER_DATA}" in body and "Task: customers" in body
    assert "read 12, new 6, changed 4, unchanged 0, failed 2, pending 1" in body
    assert "customers 10006: PaymentConditionId: King BETCOND 9 does not exist in King" in body
    assert "customers 10008: Qics rejected CustomerCompany: Name: The field Name must be a string" in body
    assert "a record fails on a lookup:" in body and "param keys" in body
    assert "Qics rejects a record: Qics refused the record for its own data" in body
    assert f"/dags/{MASTER_DATA}/runs/" in mail.html and "/tasks/customers?try_number=1" in mail.html
    assert "/king-qics/administrations/noord" in mail.html
    assert [hook["path"] for hook in webhook.received] == [WEBHOOK_PATH]
    assert "customers 10006" in webhook.received[0]["body"]["text"]

    # the next run fails with the same record and reason: not told again
    run(dag_bag, MASTER_DATA)
    assert len(smtp.mails) == 1 and len(webhook.received) == 1


def test_a_broken_qics_token_chain_is_told_once_with_the_reauthorization_and_once_resolved(
    alerting, smtp, monkeypatch
):
    sandbox, dags = alerting
    dag_bag = dags()
    sandbox.admin("qics", "POST", "oauth/revoke")
    _, states = run(dag_bag, MASTER_DATA)
    assert {states[task] for task in ("vat_codes", "payment_conditions", "cost_centers")} == {"failed"}
    assert [mail.kind for mail in smtp.mails] == ["credentials"]  # five tasks failed: one message
    body = text_of(smtp.mails[0].html)
    assert (
        smtp.mails[0].subject == "[king-qics] noord: Qics refuses the sync's credentials: a person must act"
    )
    assert "invalid_grant" in body
    assert f"{sandbox.qics_url}/api/oauth2/oauth2/auth?response_type=code&client_id=" in body
    assert (
        "grant_type=authorization_code" in body and "extra refresh_token of connection qics_sandbox" in body
    )
    run(dag_bag, INVOICE_EXPORT)  # the other flow fails the same way: still nothing new
    assert len(smtp.mails) == 1

    # a person re-authorizes: a new refresh token in the connection starts a new chain
    fixture = secrets_fixture()
    fixture["qics"]["clients"][0]["refresh_token"] = "kqs-reauthorized-token-1e9b"
    sandbox.load(fixture)
    conn = json.loads(os.environ["AIRFLOW_CONN_QICS_SANDBOX"])
    conn["extra"]["refresh_token"] = "kqs-reauthorized-token-1e9b"
    monkeypatch.setenv("AIRFLOW_CONN_QICS_SANDBOX", json.dumps(conn))
    run(dag_bag, MASTER_DATA)
    kinds = [mail.kind for mail in smtp.mails]
    assert kinds.count("credentials_resolved") == 1 and kinds.count("credentials") == 1
    assert "kqs-reauthorized-token-1e9b" not in "".join(mail.raw for mail in smtp.mails)


def test_king_refusing_the_partner_key_is_a_credentials_message(alerting, smtp, monkeypatch):
    _, dags = alerting
    dag_bag = dags()
    conn = json.loads(os.environ["AIRFLOW_CONN_KING_NOORD"])
    conn["extra"]["partner_key"] = "kqs-wrong-partner-key-0c4d"
    monkeypatch.setenv("AIRFLOW_CONN_KING_NOORD", json.dumps(conn))
    _, states = run(dag_bag, INVOICE_EXPORT)
    assert states["select"] == "success" and states["export"] == "failed"
    assert [mail.kind for mail in smtp.mails] == ["credentials"]
    mail = smtp.mails[0]
    assert (
        mail.subject
        == "[king-qics] noord: King refuses the partner key or environment code: a person must act"
    )
    body = text_of(mail.html)
    assert "King refused the partner key: check that the partner key of connection king_noord" in body
    assert "Correct connection king_noord (Admin -> Connections), run the preflight" in body
    assert "kqs-wrong-partner-key-0c4d" not in mail.raw


def test_a_stalled_invoice_export_is_told_once_and_resolved_once(
    alerting, smtp, monkeypatch, clear_of_midnight
):
    sandbox, dags = alerting
    dag_bag = dags({"stalled_minutes": 1}, noord=ALL_DAY)  # zuid: its window, stalled_minutes 1 too
    sandbox.admin("qics", "POST", "oauth/revoke")
    run(dag_bag, INVOICE_EXPORT)  # select fails: nothing runs through the ledger
    _, states = run(dag_bag, WATCHDOG)
    assert states == {"watch": "success"}
    run(dag_bag, WATCHDOG)  # still stalled: told once
    kinds = [mail.kind for mail in smtp.mails if "noord" in mail.subject]
    assert kinds == ["credentials", "stalled"]
    noord = [mail for mail in smtp.mails if "noord" in mail.subject]  # zuid may stall too (in its window)
    body = text_of(noord[-1].html)
    assert "No run of king_qics__noord__invoice_export got through the invoice ledger" in body

    fixture = secrets_fixture()
    fixture["qics"]["clients"][0]["refresh_token"] = "kqs-reauthorized-token-2f0a"
    sandbox.load(fixture)
    conn = json.loads(os.environ["AIRFLOW_CONN_QICS_SANDBOX"])
    conn["extra"]["refresh_token"] = "kqs-reauthorized-token-2f0a"
    monkeypatch.setenv("AIRFLOW_CONN_QICS_SANDBOX", json.dumps(conn))
    _, states = run(dag_bag, INVOICE_EXPORT)
    assert states["export"] == "failed"  # invoice 6's debtor is not in King; the rest is booked
    assert "invoice N2026005: debtor 19999" in text_of(
        [m for m in smtp.mails if "noord" in m.subject][-1].html
    )
    run(dag_bag, WATCHDOG)
    run(dag_bag, WATCHDOG)
    kinds = [mail.kind for mail in smtp.mails if "noord" in mail.subject]
    assert kinds == ["credentials", "stalled", "credentials_resolved", "task_failed", "stalled_resolved"]


def test_invoices_waiting_too_long_are_told_once_and_resolved_once_and_the_digest_comes_once(
    alerting, smtp, monkeypatch, clear_of_midnight
):
    import time

    from king_qics.hooks.king import KingFinanceHook
    from tests.king_records import create_record

    _, dags = alerting
    waiting = {"invoices_waiting_hours": 0.0005, "daily_digest": "00:00", "max_items": 1}  # 1.8 s
    dag_bag = dags(waiting)
    _, states = run(dag_bag, INVOICE_EXPORT)
    assert states["export"] == "failed"  # invoice N2026005: its debtor is not in King
    (failed,) = smtp.mails
    assert failed.kind == "task_failed" and failed.subject.startswith(
        "[king-qics] noord: invoice_export.export"
    )
    body = text_of(failed.html)
    assert "invoice N2026005: debtor 19999 (customer code) does not exist in King" in body
    assert "booked 3" in body and "failed 1" in body
    time.sleep(2)
    run(dag_bag, WATCHDOG)
    run(dag_bag, WATCHDOG)  # still waiting, digest sent today: nothing new
    noord = [mail for mail in smtp.mails if "noord" in mail.subject]
    assert [mail.kind for mail in noord] == ["task_failed", "invoices_waiting", "digest"]
    body = text_of(noord[1].html)
    assert noord[1].subject == "[king-qics] noord: 2 invoice(s) not booked in King for over 0.0005 h"
    assert "and 1 more (the King <-> Qics page lists them all)" in body  # max_items 1
    digest = text_of(noord[2].html)
    assert (
        "1 invoices failing" in digest and "invoice N2026005" in digest and "1 records failing" not in digest
    )

    # the debtor appears in King, and the administration books invoices without a PDF
    with KingFinanceHook("king_noord") as king:
        create_record(king, "DEB", {"NR": 19999, "ZKSL": "NIEUW", "NAAM": "Nieuwe klant"})
    dag_bag = dags(waiting, noord={"missing_pdf": "book_without"})
    _, states = run(dag_bag, INVOICE_EXPORT)
    assert states == {"select": "success", "export": "success", "report": "success"}
    run(dag_bag, WATCHDOG)
    run(dag_bag, WATCHDOG)
    noord = [mail for mail in smtp.mails if "noord" in mail.subject]
    assert [mail.kind for mail in noord] == [
        "task_failed",
        "invoices_waiting",
        "digest",
        "invoices_waiting_resolved",
    ]
    assert noord[-1].subject == "[king-qics] noord: resolved: no invoice waits longer than 0.0005 h any more"


def test_an_alert_the_smtp_server_did_not_take_is_told_by_the_next_check(
    alerting, smtp, monkeypatch, clear_of_midnight
):
    from sandbox.server import free_port

    _, dags = alerting
    dag_bag = dags({"stalled_minutes": 1}, noord=ALL_DAY)  # no export ran today: stalled
    down = {**smtp.connection(), "port": free_port()}  # nothing listens there
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", json.dumps(down))
    _, states = run(dag_bag, WATCHDOG)
    assert states == {"watch": "failed"} and smtp.mails == []
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", json.dumps(smtp.connection()))
    _, states = run(dag_bag, WATCHDOG)
    run(dag_bag, WATCHDOG)
    assert states == {"watch": "success"}
    assert [mail.kind for mail in smtp.mails if "noord" in mail.subject] == ["stalled"]


def test_a_task_failing_on_an_api_fault_through_its_retries_is_told_once_after_its_last_try(alerting, smtp):
    sandbox, dags = alerting
    dag_bag = dags()
    sandbox.faults("qics", {"kind": "http_503", "operations": ["GET ItemCompany"]})  # every attempt
    dag_run, states = run(dag_bag, MASTER_DATA)
    assert states["items"] == "failed" and dag_run.get_task_instance("items").try_number == 4  # 3 retries
    assert sorted(mail.subject for mail in smtp.mails) == [
        "[king-qics] noord: master_data.customers failed: 1 customers record of noord not synced",
        "[king-qics] noord: master_data.items failed: TransientError",
    ]
    (items,) = [mail for mail in smtp.mails if "items" in mail.subject]
    body = text_of(items.html)
    assert "Task: items" in body and "try 4" in body and "HTTP 503" in body
    assert "a task failed after all its retries on an API fault: King or Qics did not answer" in body
