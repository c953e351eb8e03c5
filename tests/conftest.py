"""Test-wide setup: an isolated Airflow home, and both sandboxes running as a real server process.

The sandboxes run in a subprocess (``python -m sandbox serve``) on free ports, once per test
session; the ``sandbox`` fixture reloads the demo fixture and clears all faults before each test,
so every test starts from the same known state and talks to them over real HTTP.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from sandbox.server import free_port, start_process, stop_process
from tests.demo_data import load_fixture, qics_only_fixture

ROOT = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="kqs-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
os.environ.setdefault(
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{os.environ['AIRFLOW_HOME']}/airflow.db"
)


class Sandboxes:
    """Handle on the running emulators and their admin API."""

    def __init__(self, king_port: int, qics_port: int, process: subprocess.Popen):
        self.king_port, self.qics_port, self.process = king_port, qics_port, process
        self.king_base = f"http://127.0.0.1:{king_port}"
        self.qics_base = f"http://127.0.0.1:{qics_port}"
        self.king_url = f"{self.king_base}/v1/ws1_xml.asmx"
        self.qics_url = self.qics_base

    def _base(self, api: str) -> str:
        return {"king": self.king_base, "qics": self.qics_base}[api]

    def admin(self, api: str, method: str, path: str, **kwargs):
        response = requests.request(method, f"{self._base(api)}/_sandbox/{path}", timeout=60, **kwargs)
        response.raise_for_status()
        return response.json()

    def load(self, fixture: dict) -> None:
        for api in ("king", "qics"):
            section = {**fixture.get(api, {}), "_base_dir": fixture.get("_base_dir")}
            self.admin(api, "POST", "load", json=section)

    def faults(self, api: str, *rules: dict, seed: int | None = None) -> dict:
        return self.admin(api, "POST", "faults", json={"faults": list(rules), "seed": seed})

    def clear_faults(self) -> None:
        for api in ("king", "qics"):
            self.admin(api, "DELETE", "faults")

    def calls(self, api: str) -> dict:
        return self.admin(api, "GET", "calls")

    def reset_calls(self) -> None:
        for api in ("king", "qics"):
            self.admin(api, "DELETE", "calls")

    def state(self, api: str) -> dict:
        return self.admin(api, "GET", "state")


@pytest.fixture(scope="session")
def sandboxes():
    king_port, qics_port = free_port(), free_port()
    log_path = Path(tempfile.mkdtemp(prefix="kqs-sandbox-")) / "sandbox.log"
    with open(log_path, "w") as log_file:
        try:
            process = start_process(king_port, qics_port, output=log_file)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{log_path.read_text()}") from None
        yield Sandboxes(king_port, qics_port, process)
        stop_process(process)


@pytest.fixture
def qics_sandbox(sandboxes):
    """The sandboxes with only the Qics demo data loaded (King empty) and every fault off."""
    sandboxes.load(qics_only_fixture())
    return sandboxes


@pytest.fixture
def sandbox(sandboxes):
    """The sandboxes, reloaded with the demo fixture and with every fault off."""
    sandboxes.load(load_fixture())
    return sandboxes
