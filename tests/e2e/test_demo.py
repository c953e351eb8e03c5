"""``make demo`` as a user meets it: started, used, stopped with Ctrl-C, started again.

The demo runs as a terminal would run it (its own process group, SIGINT to the whole group for a
Ctrl-C) on free ports with its Airflow home in a temporary directory. Checked: the login is printed
once the UI answers, the UI and ``airflow plugins`` show no plugin error, airflow.cfg holds the
demo's settings, a first run of each DAG is started (``--first-run yes``: the clock decides in
``auto``), Ctrl-C leaves no process of the demo behind, and a restart starts the sandboxes and the
Airflow home (run history, sync-state store) fresh together, keeping the login.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
import requests

from sandbox.server import free_port

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from demo import STOP_GRACE  # noqa: E402
from demo_home import airflow_settings  # noqa: E402

pytestmark = pytest.mark.e2e
STOP_BOUND = STOP_GRACE + 20  # seconds from Ctrl-C until no process of the demo may be left


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: none of the test session's own Airflow settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


class Demo:
    def __init__(self, home: Path, log: Path, first_run: str):
        self.home, self.log_path = home, log
        self.port, self.king_port, self.qics_port = free_port(), free_port(), free_port()
        self.base = f"http://localhost:{self.port}"
        args = ["--home", str(home), "--port", str(self.port), "--king-port", str(self.king_port)]
        args += ["--qics-port", str(self.qics_port), "--first-run", first_run]
        self.log = open(log, "w")  # noqa: SIM115 (closed in ctrl_c)
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tools" / "demo.py"), *args],
            cwd=ROOT,
            env=clean_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's foreground job: Ctrl-C signals the whole group
        )
        self.seen: dict[int, psutil.Process] = {}

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def said(self) -> list[str]:
        """The demo's own lines (not Airflow's)."""
        return [line for line in self.output().splitlines() if line.startswith("demo ")]

    def track(self) -> None:
        """Remember every process below the demo (to check they are all gone after Ctrl-C)."""
        try:
            for process in psutil.Process(self.process.pid).children(recursive=True):
                self.seen.setdefault(process.pid, process)
        except psutil.Error:
            pass

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            self.track()
            if self.process.poll() is not None:
                raise AssertionError(f"the demo exited before {text!r}:\n{self.output()[-5000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} after {timeout:.0f} s:\n{self.output()[-5000:]}")
            time.sleep(0.5)
        self.track()

    def kill(self) -> None:
        """Cleanup after a failed check: nothing of it may outlive the test."""
        self.track()
        for process in [*self.left(), psutil.Process(self.process.pid)]:
            try:
                process.kill()
            except psutil.Error:
                pass
        self.process.wait(timeout=30)
        self.log.close()

    def ctrl_c(self) -> float:
        """SIGINT to the demo's process group; seconds until none of its processes is left."""
        self.track()
        started = time.monotonic()
        os.killpg(self.process.pid, signal.SIGINT)
        while time.monotonic() - started < STOP_BOUND:
            if self.process.poll() is not None and not self.left():
                break
            time.sleep(0.5)
        took = time.monotonic() - started
        left = self.left()
        for process in left:  # never leave them to the rest of the suite
            try:
                process.kill()
            except psutil.Error:
                pass
        self.process.poll() is None and self.process.kill()
        self.log.close()
        assert self.process.returncode is not None, f"the demo still runs after {STOP_BOUND:.0f} s"
        assert not left, f"left running after Ctrl-C: {[' '.join(p.cmdline()[:3]) for p in left]}"
        return took

    def left(self) -> list[psutil.Process]:
        """Processes of the demo still running: seen below it, or with its Airflow home."""
        living = []
        for process in self.seen.values():
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    living.append(process)
            except psutil.Error:
                pass
        for process in psutil.process_iter():
            try:
                if process.environ().get("AIRFLOW_HOME") == str(self.home) and process not in living:
                    if process.status() != psutil.STATUS_ZOMBIE:
                        living.append(process)
            except psutil.Error:
                pass
        return living

    def api(self, path: str) -> dict:
        password = json.loads((self.home / "passwords.json").read_text())["admin"]
        login = requests.post(
            f"{self.base}/auth/token", json={"username": "admin", "password": password}, timeout=30
        )
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        response = requests.get(f"{self.base}/api/v2/{path}", headers=headers, timeout=30)
        response.raise_for_status()
        return response.json()


def rows(database: Path, table: str, written_before: tuple[str, datetime] | None = None) -> int:
    """Rows of a state-store table; with ``(column, when)`` only those written before ``when``."""
    if not database.exists():
        return 0
    with sqlite3.connect(database) as conn:
        found = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
        if not found:
            return 0
        if written_before is None:
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        column, when = written_before
        stamps = [row[0] for row in conn.execute(f"SELECT {column} FROM {table}")]
    # the store keeps UTC; SQLite drops the offset
    return sum(1 for s in stamps if s and datetime.fromisoformat(s).replace(tzinfo=UTC) < when)


def test_demo_ctrl_c_stops_everything_and_a_restart_is_fresh(tmp_path):
    home = tmp_path / "airflow_home"
    demo = Demo(home, tmp_path / "demo-1.log", first_run="yes")
    try:
        demo.wait_for("UI ready at", timeout=300)
        assert requests.get(f"{demo.base}/api/v2/monitor/health", timeout=10).status_code == 200
        assert demo.output().count("UI ready at") == 1
        assert "Fresh start" in demo.output()

        # one plugin registration: no import error in the UI, none from a CLI command
        assert demo.api("plugins/importErrors")["total_entries"] == 0
        plugins = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "plugins", "-o", "json"],
            env=clean_env(AIRFLOW_HOME=str(home)),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert [plugin["name"] for plugin in json.loads(plugins.stdout)] == ["king_qics"]
        assert "already registered" not in plugins.stderr

        # airflow.cfg holds what the demo's environment says: any `airflow` command sees the same
        settings = airflow_settings(home, demo.port)
        script = (
            "import json; from airflow.configuration import conf; "
            f"print(json.dumps({{s: {{k: conf.get(s, k) for k in ks}} for s, ks in {settings!r}.items()}}))"
        )
        seen = subprocess.run(
            [sys.executable, "-c", script],
            env=clean_env(AIRFLOW_HOME=str(home)),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert json.loads(seen.stdout.strip().splitlines()[-1]) == settings

        # the first runs: master data fails by design (debtor 10006), but it synced the rest
        demo.wait_for("first run: king_qics__noord__master_data failed", timeout=600)
        assert rows(home / "king_qics_state.db", "synced_records") > 0
        password = json.loads((home / "passwords.json").read_text())["admin"]
        took = demo.ctrl_c()  # while the projects/employees runs are under way
    finally:
        if demo.process.poll() is None:
            demo.kill()
    print(f"first demo stopped {took:.1f} s after Ctrl-C:", *demo.said()[-3:], sep="\n  ")

    restarted = datetime.now(UTC)
    again = Demo(home, tmp_path / "demo-2.log", first_run="no")
    try:
        again.wait_for("UI ready at", timeout=300)
        assert "the previous demo's runs and sync state were removed" in again.output()
        # nothing of the first demo is left; the new scheduler may already have started runs of its
        # own (inside 07:00-20:00 the latest interval of each DAG at once, the alerts DAG round the
        # clock), so what counts is what was written or queued before the restart
        state = home / "king_qics_state.db"
        assert rows(state, "synced_records", written_before=("synced_at", restarted)) == 0
        assert rows(state, "oauth_tokens", written_before=("updated_at", restarted)) == 0
        runs = again.api("dags/~/dagRuns?limit=100")["dag_runs"]
        before = restarted.isoformat()
        assert [r["dag_run_id"] for r in runs if (r.get("queued_at") or r["run_after"]) < before] == []
        assert f"login: admin / {password}" in again.output()  # the login is kept
        took = again.ctrl_c()
    finally:
        if again.process.poll() is None:
            again.kill()
    print(f"second demo stopped {took:.1f} s after Ctrl-C:", *again.said()[-3:], sep="\n  ")
