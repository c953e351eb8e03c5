"""Re-authorization without shell access: the King <-> Qics page's "Re-authorize Qics" form starts a
new token chain from a refresh token a person got from QicsMilestones (ui/qics_token.py), on a real
`airflow api-server` in headless Chromium; the token is kept nowhere: not in Airflow's metadata
database, a log, the page or the state store in clear. Set UPDATE_SCREENSHOT=1 to also write the
form's screenshot to docs/ui_qics_token.png.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import sqlalchemy as sa

from king_qics.hooks.king import KingFinanceHook
from king_qics.hooks.qics.oauth import clear_process_cache
from king_qics.state import oauth_tokens
from tests.e2e.ui.airflow_ui import login, token
from tests.king_records import update_record
from tests.sandbox_oauth import new_refresh_token

ROOT = Path(__file__).resolve().parents[3]
MASTER_DATA = "king_qics__noord__master_data"
API = "/king-qics/api/administrations/noord/qics-token"


def break_the_chain(run_dag, sandbox) -> None:
    """The chain is revoked in Qics: the next master-data run cannot write (a person must act)."""
    run_dag(MASTER_DATA)
    sandbox.admin("qics", "POST", "oauth/revoke")
    sandbox.admin("qics", "POST", "oauth/expire")
    clear_process_cache()
    with KingFinanceHook("king_noord", timeout=5) as king:  # something to write to Qics
        update_record(king, "DEB", "NR", 10002, {"PLAATS": "Amersfoort"})
    _, states = run_dag(MASTER_DATA)
    assert states["customers"] == "failed"  # invalid_grant
    assert customers_city(sandbox, "10002") != "Amersfoort"


def customers_city(sandbox, code: str) -> str:
    records = sandbox.state("qics")["entities"]["CustomerCompany"]
    return next(
        r["VisitAddressCity"]
        for r in records
        if str(r["CustomerCode"]) == code and str(r["CompanyId"]) == "1"
    )


def spent(sandbox) -> dict[str, str]:
    return {t["token"]: t["status"] for t in sandbox.state("qics")["oauth"]["refresh_tokens"]}


def test_only_a_user_who_may_edit_the_connection_and_only_as_json(client, connections, state_store):
    body = {"refresh_token": "a-token-qics-never-issued"}
    assert client.post(API, json=body).status_code == 401
    for user in ("viewer", "editor"):  # may read runs; the editor may trigger them too
        answer = client.post(API, json=body, headers={"Authorization": f"Bearer {token(client, user)}"})
        assert answer.status_code == 403, answer.text
        assert "may not edit connection qics_sandbox" in answer.json()["detail"]
    operator = {"Authorization": f"Bearer {token(client, 'operator')}"}
    # what a form on another site could send with the UI's cookie: refused before anything is read
    client.cookies.set("_token", token(client, "operator"))
    assert client.post(API, data=body).status_code == 415
    as_text = {"Content-Type": "text/plain"}
    assert client.post(API, content=json.dumps(body), headers=as_text).status_code == 415
    client.cookies.clear()
    assert client.post(API, json={"token": "x"}, headers=operator).status_code == 422
    assert client.post(API, json={"refresh_token": "  "}, headers=operator).status_code == 400

    answer = client.post(API, json=body, headers=operator)  # Qics refuses it: the old chain is kept
    assert answer.status_code == 400
    assert "refused the refresh token given" in answer.json()["detail"]
    assert "a-token-qics-never-issued" not in answer.text
    with state_store.engine.connect() as conn:
        assert conn.execute(sa.select(oauth_tokens.c.refreshing_by)).scalars().all() in ([], [None])


def test_a_new_token_chain_from_the_page_without_shell_access_and_kept_nowhere(
    run_dag, sandbox, state_store, api_server, browser, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    break_the_chain(run_dag, sandbox)
    new_token = new_refresh_token(sandbox)

    wait = WebDriverWait(browser, 60)
    login(browser, api_server, "operator")
    browser.get(f"{api_server}/king-qics/administrations/noord")
    wait.until(ready.element_to_be_clickable((By.ID, "qics-token"))).click()
    field = wait.until(ready.presence_of_element_located((By.ID, "refresh_token")))
    assert field.get_attribute("type") == "password"
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "connection qics_sandbox" in page and "noord, zuid" in page  # who shares the connection
    assert "grant_type=authorization_code" in page  # how to get a token, step by step
    field.send_keys("a-token-qics-never-issued")  # refused: said in the form, the old chain kept
    browser.find_element(By.CSS_SELECTOR, "#token button[type=submit]").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "result"), "Refused (HTTP 400)"))
    assert "refused the refresh token given" in browser.find_element(By.ID, "result").text
    field.send_keys(new_token)
    screenshot = tmp_path / "ui_qics_token.png"
    browser.save_screenshot(str(screenshot))
    if os.environ.get("UPDATE_SCREENSHOT"):
        shutil.copy(screenshot, ROOT / "docs" / "ui_qics_token.png")
    browser.find_element(By.CSS_SELECTOR, "#token button[type=submit]").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "result"), "has a new token chain"))
    result = browser.find_element(By.ID, "result").text
    assert "Connection qics_sandbox" in result and "(administrations noord, zuid)" in result
    assert field.get_attribute("value") == "" and new_token not in browser.page_source

    assert spent(sandbox)[new_token] == "used"  # spent at once
    with state_store.engine.connect() as conn:
        stored = conn.execute(sa.select(oauth_tokens)).all()
    assert stored and all(new_token not in json.dumps([str(v) for v in row]) for row in stored)
    server_log = (tmp_path / "api-server.log").read_text()
    assert "/qics-token" in server_log and new_token not in server_log
    assert tables_holding(new_token) == []  # not in Airflow's metadata database

    clear_process_cache()
    _, states = run_dag(MASTER_DATA)  # the tasks use the new chain; the connection is not touched
    assert states["customers"] == "failed"  # 10006, by design of the demo data; 10002 is written
    assert customers_city(sandbox, "10002") == "Amersfoort"


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
