"""The compose stack of ``make compose-test`` (tools/compose_test.py) and Airflow's REST API in it.

``Stack`` runs ``docker compose`` with docker-compose.yaml, docker/compose-test.yaml on top, the
``sandboxes`` profile, a project name of its own and an env file the test writes (generated
secrets; nothing is read from or written to the user's ``.env``). Every port it publishes is bound
to 127.0.0.1. ``AirflowApi`` logs in as the compose's admin user (JWT) and triggers/waits for runs.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import requests
from standin_images import DIGEST_LABEL as STANDIN_LABEL

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "kqs-compose-test"
FILES = [ROOT / "docker-compose.yaml", ROOT / "docker" / "compose-test.yaml"]
LONG_RUNNING = (
    "postgres",
    "redis",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "sandboxes",
)
ONE_SHOT = ("airflow-init", "sandbox-connections")
PASSWORDS_FILE = "/opt/airflow/simple_auth_manager_passwords.json.generated"
SECRET_LINE = "Password for user"  # SimpleAuthManager prints generated passwords: never echo these


class StackError(AssertionError):
    pass


def wait_for(what: str, check, timeout: float, interval: float = 2.0):
    """Poll ``check`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except (requests.RequestException, subprocess.CalledProcessError, ValueError, KeyError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Stack:
    def __init__(self, env_file: Path):
        self.env_file = env_file

    def compose(self, *args: str, timeout: float = 600, capture: bool = False, check: bool = True):
        command = ["docker", "compose", "-p", PROJECT, "--env-file", str(self.env_file)]
        for file in FILES:
            command += ["-f", str(file)]
        command += ["--profile", "sandboxes", *args]
        if not capture:
            print("+ docker compose", " ".join(args), flush=True)
        return subprocess.run(
            command, cwd=ROOT, check=check, timeout=timeout, capture_output=capture, text=True
        )

    def containers(self, service: str, all_states: bool = False) -> list[str]:
        args = ["ps", "-q", *(["-a"] if all_states else []), service]
        return self.compose(*args, capture=True).stdout.split()

    @staticmethod
    def inspect(container: str) -> dict:
        out = subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)[0]

    def healthy(self, service: str, count: int = 1) -> bool:
        states = [self.inspect(c)["State"] for c in self.containers(service)]
        return sum(1 for s in states if s.get("Health", {}).get("Status") == "healthy") >= count

    def completed(self, service: str) -> bool:
        containers = self.containers(service, all_states=True)
        if not containers:
            return False
        state = self.inspect(containers[0])["State"]
        if state["Status"] == "exited" and state["ExitCode"] != 0:
            raise StackError(f"{service} exited with code {state['ExitCode']}")
        return state["Status"] == "exited"

    def wait_ready(self, workers: int = 1, timeout: float = 600) -> None:
        wait_for("airflow-init and sandbox-connections", lambda: all(map(self.completed, ONE_SHOT)), timeout)
        for service in LONG_RUNNING:
            count = workers if service == "airflow-worker" else 1
            wait_for(f"{service} healthy ({count})", lambda s=service, n=count: self.healthy(s, n), timeout)

    def exec(self, service: str, *command: str, timeout: float = 120) -> str:
        return self.compose("exec", "-T", service, *command, capture=True, timeout=timeout).stdout

    def psql(self, database: str, sql: str) -> list[list[str]]:
        out = self.exec("postgres", "psql", "-U", "airflow", "-d", database, "-At", "-F", "\t", "-c", sql)
        return [line.split("\t") for line in out.splitlines() if line]

    def admin_password(self) -> str:
        return json.loads(self.exec("airflow-apiserver", "cat", PASSWORDS_FILE))["admin"]

    def worker_for(self, hostname: str) -> str:
        """The airflow-worker container whose hostname a task instance reports."""
        for container in self.containers("airflow-worker"):
            if self.inspect(container)["Config"]["Hostname"] == hostname:
                return container
        raise StackError(f"no airflow-worker container has the hostname {hostname!r}")

    def print_logs(self, lines: int = 60) -> None:
        out = self.compose("logs", "--no-color", "--tail", str(lines), capture=True, check=False)
        for line in (out.stdout + out.stderr).splitlines():
            print("[masked]" if SECRET_LINE in line else line)

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "30", check=False, timeout=300)
        # earlier builds of the project image, untagged by newer ones (only images built on a stand-in)
        prune = ["docker", "image", "prune", "--force", "--filter", f"label={STANDIN_LABEL}"]
        subprocess.run(prune, check=False, capture_output=True, timeout=120)


class AirflowApi:
    """Airflow 3's REST API (/api/v2) as the admin user, with a JWT from /auth/token."""

    def __init__(self, base: str, password: str):
        self.base = base
        response = requests.post(
            f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=30
        )
        if response.status_code not in (200, 201):
            raise StackError(f"login as admin failed: HTTP {response.status_code}")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def call(self, method: str, path: str, **kwargs) -> dict:
        response = self.session.request(method, f"{self.base}/api/v2{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def trigger(self, dag_id: str, timeout: float) -> str:
        wait_for(f"{dag_id} to be parsed", lambda: self.call("GET", f"/dags/{dag_id}"), timeout)
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        run = self.call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None})
        return run["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        def finished():
            state = self.run_state(dag_id, run_id)
            return state if state in ("success", "failed") else None

        return wait_for(f"{dag_id} run {run_id}", finished, timeout)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict]:
        body = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti for ti in body["task_instances"]}
