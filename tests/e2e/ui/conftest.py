"""Fixtures of the King <-> Qics page's tests: Airflow's SimpleAuthManager with known users, its
API server in process and as a real `airflow api-server`, and Debian's headless Chromium."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sandbox.server import free_port
from tests.e2e.ui.airflow_ui import CHROMEDRIVER, CHROMIUM, USERS


@pytest.fixture(scope="module")
def auth_env(tmp_path_factory):
    """Airflow's SimpleAuthManager with two known users: a viewer, and one without any role."""
    passwords = tmp_path_factory.mktemp("auth") / "passwords.json"
    passwords.write_text(json.dumps({name: password for name, (_, password) in USERS.items()}))
    env = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{n}:{role}" for n, (role, _) in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": "king-qics-ui-test-secret-" + "x" * 48,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield env


@pytest.fixture(scope="module")
def client(auth_env, airflow_db):
    """Airflow's own API server app (plugins mounted as in production), in process."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    return TestClient(create_app())


@pytest.fixture
def api_server(auth_env, airflow_db, tmp_path):
    """A real `airflow api-server` on a free port, on the tests' metadata DB and state store."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, **auth_env, "AIRFLOW__API__BASE_URL": base, "AIRFLOW__API__WORKERS": "1"}
    log = open(tmp_path / "api-server.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "airflow"),
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow to start
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"airflow api-server did not start:\n{(tmp_path / 'api-server.log').read_text()}"
                )
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture
def browser():
    """Debian's headless Chromium, driven through chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"):
        options.add_argument(flag)
    options.add_argument("--window-size=1500,1300")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
