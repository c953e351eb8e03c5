"""What the UI tests share: Airflow users with their roles, logging in, Airflow's REST API."""

from __future__ import annotations

import requests

USERS = {
    "viewer": ("viewer", "viewer-password"),
    "norole": ("", "norole-password"),
    "editor": ("user", "editor-password"),  # may trigger DAG runs
    "operator": ("op", "operator-password"),  # may edit connections too
}
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def token(client, user: str) -> str:
    response = client.post("/auth/token", json={"username": user, "password": USERS[user][1]})
    assert response.status_code == 201, response.text
    return response.json()["access_token"]


def login(browser, api_server: str, user: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(f"{api_server}/auth/login")
    wait.until(ready.presence_of_element_located((By.NAME, "username"))).send_keys(user)
    browser.find_element(By.NAME, "password").send_keys(USERS[user][1])
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda driver: driver.get_cookie("_token") is not None)


def dag_run_conf(api_server: str, dag_id: str, run_id: str) -> dict:
    answer = requests.post(
        f"{api_server}/auth/token", json={"username": "editor", "password": USERS["editor"][1]}, timeout=30
    )
    headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    run = requests.get(f"{api_server}/api/v2/dags/{dag_id}/dagRuns/{run_id}", headers=headers, timeout=30)
    assert run.status_code == 200, run.text
    return run.json()["conf"]
