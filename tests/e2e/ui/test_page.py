"""The King <-> Qics page (plugins/king_qics/ui): its API behind Airflow's authentication, and the
page itself in headless Chromium, logged in through Airflow's login form on a real
`airflow api-server`, showing the data of a real run of the DAGs against the sandboxes.

Set UPDATE_SCREENSHOT=1 to also write the browser's screenshot to docs/ui_sync_status.png.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.ui.airflow_ui import USERS, dag_run_conf, login, token

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOT = ROOT / "docs" / "ui_sync_status.png"
ROUTES = [
    "/king-qics/",
    "/king-qics/administrations/noord",
    "/king-qics/administrations/noord/lists/failing",
    "/king-qics/administrations/noord/qics-token",
    "/king-qics/api/administrations",
    "/king-qics/api/administrations/noord",
    "/king-qics/api/administrations/noord/lists/invoices_exported",
]


def test_every_route_requires_an_airflow_user_who_may_read_dag_runs(client, state_store):
    viewer = {"Authorization": f"Bearer {token(client, 'viewer')}"}
    no_role = {"Authorization": f"Bearer {token(client, 'norole')}"}
    for route in ROUTES:
        assert client.get(route).status_code == 401, route
        assert client.get(route, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403, route
        assert client.get(route, headers=no_role).status_code == 403, route
        assert client.get(route, headers=viewer).status_code == 200, route
        client.cookies.set("_token", token(client, "viewer"))  # the UI's session cookie works too
        assert client.get(route).status_code == 200, route
        client.cookies.clear()
    assert client.get("/king-qics/api/administrations/nosuch", headers=viewer).status_code == 404


@pytest.fixture
def synced(run_dag, sandbox):
    """A real run of noord's master data (it reconciles: the first run of the day), then its
    projects/employees DAG (customer_managers: a second, succeeding pass over customers, after the
    reconciliation), then the invoice export."""
    _, master = run_dag("king_qics__noord__master_data")
    _, projects = run_dag("king_qics__noord__projects_employees")
    _, invoices = run_dag("king_qics__noord__invoice_export")
    assert master["customers"] == "failed" and master["reconcile"] == "success"
    assert projects["customer_managers"] == "success"  # 10005 gets its manager: changed 1
    assert invoices["export"] == "failed"  # N2026005: its customer is no King debtor (demo data)
    return sandbox


def test_api_shows_the_run(synced, client, state_store):
    from king_qics.state import InvoiceLedger

    headers = {"Authorization": f"Bearer {token(client, 'viewer')}"}
    overview = client.get("/king-qics/api/administrations", headers=headers).json()
    noord = next(adm for adm in overview["administrations"] if adm["id"] == "noord")
    assert noord["records"] == {"failing": 1, "pending": 0}  # 10006; 10005 pending no more
    # the failed master-data run of customers stays visible after customer_managers ran (one run
    # of one task, with its own time)
    failed = {run["task"]: run for run in noord["runs_with_failures"]}
    assert set(failed) == {"customers"} and failed["customers"]["failed"] == 1
    assert failed["customers"]["dag_id"] == "king_qics__noord__master_data"
    booked = [row for row in InvoiceLedger(state_store, "noord").rows() if row.state == "marked"]
    assert booked and noord["invoices"]["exported"] == len(booked)
    assert noord["invoices"]["failing"] == 1 and noord["differing_records"] == 1

    detail = client.get("/king-qics/api/administrations/noord", headers=headers).json()
    failing = detail["lists"]["failing"]
    assert failing["total"] == 1 and failing["rows"][0]["king_key"] == "10006"
    assert "BETCOND 9 does not exist in King" in failing["rows"][0]["last_error"]
    runs = {run["task"]: run for run in detail["runs"]}
    master = {"vat_codes", "payment_conditions", "cost_centers", "items", "customers"}
    assert set(runs) == master | {"employees", "projects", "customer_managers"}
    assert {runs[task]["dag_id"] for task in master} == {"king_qics__noord__master_data"}
    assert (runs["customers"]["read"], runs["customers"]["failed"]) == (12, 1)  # 10006 fails
    managers = runs["customer_managers"]
    assert managers["dag_id"] == "king_qics__noord__projects_employees" and managers["entity"] == "customers"
    assert (managers["changed"], managers["failed"], managers["pending"]) == (1, 0, 0)
    assert managers["finished_at"] > runs["customers"]["finished_at"]
    ledger = {row["state"]: row for row in detail["ledger"]}
    assert ledger["marked"]["words"] == "booked and marked" and ledger["marked"]["invoices"] == len(booked)
    assert sum(row["failing"] for row in ledger.values()) == 1
    exported = detail["lists"]["invoices_exported"]["rows"]
    assert {row["booking_key"] for row in exported} == {row.booking_key for row in booked}
    assert detail["lists"]["invoices_failed"]["rows"][0]["invoice_number"] == "N2026005"
    assert detail["lists"]["differences"]["rows"][0]["king_key"] == "10006"
    # customer_managers wrote customers after the reconciliation: that one is stale, the others not
    reconciled = {rec["entity"]: rec for rec in detail["reconciliations"]}
    assert reconciled["customers"]["stale_since"] == managers["finished_at"]
    assert [entity for entity, rec in reconciled.items() if rec["stale_since"]] == ["customers"]

    more = client.get(
        "/king-qics/api/administrations/noord/lists/invoices_exported?offset=1&limit=1", headers=headers
    ).json()
    assert more["total"] == len(booked) and len(more["rows"]) == min(1, len(booked) - 1)


def shown(moment: str, zone: str) -> str:
    """A time of the JSON API as the page shows it in ``zone``."""
    return datetime.fromisoformat(moment).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def test_the_page_in_chromium_after_logging_in(synced, api_server, browser, tmp_path, state_store):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    from king_qics.ui.queries import administration_detail

    runs = {run["task"]: run for run in administration_detail(state_store, "noord")["runs"]}
    wait = WebDriverWait(browser, 60)
    browser.get(f"{api_server}/king-qics/")  # not logged in: Airflow refuses
    assert "Not authenticated" in browser.find_element(By.TAG_NAME, "body").text

    browser.get(f"{api_server}/auth/login")
    wait.until(ready.presence_of_element_located((By.NAME, "username"))).send_keys("viewer")
    browser.find_element(By.NAME, "password").send_keys(USERS["viewer"][1])
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda driver: driver.get_cookie("_token") is not None)

    # Airflow's Home page: no plugin import error (the plugin is registered once)
    browser.get(f"{api_server}/")
    wait.until(ready.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Browse']")))
    for _ in range(20):  # the badge appears once the page's request for import errors answered
        if "Plugin Import Error" in browser.find_element(By.TAG_NAME, "body").text:
            break
        time.sleep(0.5)
    assert "Plugin Import Error" not in browser.find_element(By.TAG_NAME, "body").text
    # the time zone picked in the Airflow UI's user menu (kept in the browser's local storage)
    browser.execute_script("window.localStorage.setItem('timezone', JSON.stringify('Asia/Tokyo'))")

    # through the link in Airflow's navigation: Browse -> King <-> Qics (the plugin's external view)
    browser.get(f"{api_server}/")
    wait.until(ready.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Browse']"))).click()
    wait.until(ready.element_to_be_clickable((By.XPATH, "//*[normalize-space()='King <-> Qics']"))).click()
    wait.until(ready.url_to_be(f"{api_server}/plugin/king-qics"))
    frame = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "iframe[src*='/king-qics/']")))
    browser.switch_to.frame(frame)
    row = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "tr[data-administration=noord]")))
    assert "Adviesbureau Noord B.V." in row.text
    assert browser.find_element(By.CSS_SELECTOR, ".tz").text == "Asia/Tokyo"

    # the overview after a failing master-data run and a customer_managers run that succeeded
    def overview_cell(column: str) -> str:
        return row.find_element(By.CSS_SELECTOR, f"td[data-col={column}]").text

    customers_run = shown(runs["customers"]["finished_at"].isoformat(), "Asia/Tokyo")
    assert overview_cell("failed_runs") == f"customers: 1 failed {customers_run}"
    assert (overview_cell("failing"), overview_cell("pending")) == ("1", "0")
    assert overview_cell("invoices_failing") == "1"
    assert "stale: Qics written since" in overview_cell("reconciled")
    row.find_element(By.LINK_TEXT, "Adviesbureau Noord B.V.").click()

    table = wait.until(ready.presence_of_element_located((By.ID, "runs")))

    def run_cells(task: str) -> list[str]:
        return [cell.text for cell in table.find_elements(By.CSS_SELECTOR, f"tr[data-task={task}] td")]

    customers = run_cells("customers")
    assert (customers[1], customers[3], customers[7]) == (customers_run, "12", "1")  # 10006 fails
    managers = run_cells("customer_managers")
    assert managers[0] == "customer managers (customers)" and (managers[5], managers[7]) == ("1", "0")
    failing = browser.find_element(By.CSS_SELECTOR, "table[data-list=failing]").text
    assert "10006" in failing and "BETCOND 9 does not exist in King" in failing
    ledger = browser.find_element(By.CSS_SELECTOR, "#ledger tr[data-state=marked]").text
    assert ledger.startswith("booked and marked")
    failed_invoice = browser.find_element(By.CSS_SELECTOR, "table[data-list=invoices_failed]").text
    assert "N2026005" in failed_invoice and "waiting to be booked" in failed_invoice
    exported = browser.find_element(By.CSS_SELECTOR, "table[data-list=invoices_exported]").text
    assert "N2026001" in exported and "70;2026;" in exported
    differences = browser.find_element(By.CSS_SELECTOR, "table[data-list=differences]").text
    assert "10006" in differences and "unmapped" in differences
    stale = browser.find_element(By.CSS_SELECTOR, "#reconciliations tr[data-entity=customers]").text
    assert "stale: Qics written since" in stale
    link = table.find_element(By.CSS_SELECTOR, "tr[data-task=customers] a").get_attribute("href")
    assert link.startswith(f"{api_server}/dags/king_qics__noord__master_data/runs/manual__")

    browser.switch_to.default_content()
    screenshot = tmp_path / "ui_sync_status.png"
    browser.save_screenshot(str(screenshot))
    if os.environ.get("UPDATE_SCREENSHOT"):
        shutil.copy(screenshot, SCREENSHOT)


def test_retry_and_accept_links_open_the_trigger_form_filled_in_and_trigger_that_run(
    synced, run_dag, api_server, browser, tmp_path
):
    """Each failing record and invoice has a "retry now" and an "accept as is" link; each opens the
    trigger form with the DAG's params filled in, and triggering it creates exactly that run."""
    from urllib.parse import unquote

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    run_dag("king_qics__maintenance")  # known to Airflow (serialized) like the other DAGs
    wait = WebDriverWait(browser, 60)
    login(browser, api_server, "editor")
    page = f"{api_server}/king-qics/administrations/noord"
    browser.get(page)
    failing = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "table[data-list=failing]")))
    headers = [th.text for th in failing.find_elements(By.CSS_SELECTOR, "th")]
    assert headers[:6] == ["entity", "king key", "reason", "attempts", "first failed at", "last failed at"]
    row = failing.find_element(By.XPATH, ".//tr[td[2][normalize-space()='10006']]")
    assert "BETCOND 9 does not exist in King" in row.text and row.find_elements(By.TAG_NAME, "time")
    invoices = browser.find_element(By.CSS_SELECTOR, "table[data-list=invoices_failed]")
    assert "first failed at" in invoices.text
    browser.execute_script("document.getElementById('failing').scrollIntoView()")
    screenshot = tmp_path / "ui_retry_links.png"
    browser.save_screenshot(str(screenshot))
    if os.environ.get("UPDATE_SCREENSHOT"):
        shutil.copy(screenshot, ROOT / "docs" / "ui_retry_links.png")

    # retry now: the master-data DAG with keys = {"customers": ["10006"]}
    row.find_element(By.CSS_SELECTOR, "a[data-action='retry now']").click()
    keys = wait.until(ready.presence_of_element_located((By.ID, "param_keys")))
    assert json.loads(keys.get_attribute("value")) == {"customers": ["10006"]}
    assert "king_qics__noord__master_data" in browser.find_element(By.TAG_NAME, "h1").text
    form = tmp_path / "ui_trigger_form.png"
    browser.save_screenshot(str(form))
    if os.environ.get("UPDATE_SCREENSHOT"):
        shutil.copy(form, ROOT / "docs" / "ui_trigger_form.png")
    browser.find_element(By.CSS_SELECTOR, "#trigger button[type=submit]").click()
    prefix = f"{api_server}/dags/king_qics__noord__master_data/runs/"
    wait.until(ready.url_contains(prefix))
    run_id = unquote(browser.current_url.removeprefix(prefix).split("?")[0])
    assert dag_run_conf(api_server, "king_qics__noord__master_data", run_id) == {
        "keys": {"customers": ["10006"]}
    }

    # accept as is: the maintenance DAG, the invoice filled in, the note required
    browser.get(page)
    invoice = wait.until(
        ready.presence_of_element_located(
            (By.XPATH, "//table[@data-list='invoices_failed']//tr[td[1][normalize-space()='N2026005']]")
        )
    )
    invoice.find_element(By.CSS_SELECTOR, "a[data-action='accept as is']").click()
    accept = wait.until(ready.presence_of_element_located((By.ID, "param_accept_invoices")))
    assert json.loads(accept.get_attribute("value")) == ["N2026005"]
    note = browser.find_element(By.ID, "param_note")
    assert note.get_attribute("required") is not None and note.get_attribute("value") == ""
    note.send_keys("booked by hand in King")
    browser.find_element(By.CSS_SELECTOR, "#trigger button[type=submit]").click()
    prefix = f"{api_server}/dags/king_qics__maintenance/runs/"
    wait.until(ready.url_contains(prefix))
    run_id = unquote(browser.current_url.removeprefix(prefix).split("?")[0])
    assert dag_run_conf(api_server, "king_qics__maintenance", run_id) == {
        "administration": "noord",
        "accept_invoices": ["N2026005"],
        "note": "booked by hand in King",
    }

    # a user who may only read runs: Airflow refuses the trigger, and the form says so
    browser.delete_all_cookies()
    login(browser, api_server, "viewer")
    browser.get(page)
    failing = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "table[data-list=failing]")))
    failing.find_element(By.CSS_SELECTOR, "a[data-action='retry now']").click()
    wait.until(ready.presence_of_element_located((By.ID, "param_keys")))
    browser.find_element(By.CSS_SELECTOR, "#trigger button[type=submit]").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "result"), "Airflow refused (HTTP 403)"))
