"""An Airflow command in a process of its own, as the scale benchmark and the production-shape test
start the scheduler, dag-processor, api-server and workers, and the environment they all share."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
# the machine's services (started before a session and before CI)
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_URL = "redis://127.0.0.1:6379"


def pg_admin(statement: str) -> None:
    """One statement in the server's ``postgres`` database, outside a transaction (CREATE/DROP DATABASE)."""
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", **PG)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def flush_redis_db(number: int) -> None:
    """Empty one Redis database (a Celery broker's queues of one run)."""
    import redis

    redis.Redis.from_url(f"{REDIS_URL}/{number}").flushdb()


def airflow_env(home: Path, metadata_db: str, state_db: str, api_port: int, **settings: str) -> dict:
    """The environment of every Airflow process of one installation: this shell's without its own
    Airflow and sync settings, the project's DAGs and plugins, the metadata database and the
    sync-state store (PostgreSQL URLs), the api-server on ``api_port`` with a fresh JWT secret and
    every user an admin; ``settings`` (AIRFLOW__SECTION__KEY=value) on top."""
    own = ("AIRFLOW__", "AIRFLOW_CONN_", "KING_QICS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "KING_QICS_STATE_CONN_ID": "king_qics_state",
            "AIRFLOW_CONN_KING_QICS_STATE": state_db,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            **settings,
        }
    )
    return env


def run_airflow(env: dict, logs: Path, *args: str) -> None:
    """A setup command (``db migrate``, ``pools import``), its output appended to setup.log."""
    with open(logs / "setup.log", "a") as out:
        subprocess.run([AIRFLOW, *args], env=env, cwd=ROOT, check=True, stdout=out, stderr=out)


class Component:
    """One Airflow command in its own process group, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict, logs: Path):
        self.name, self.log = name, logs / f"{name}.log"
        self._file = open(self.log, "w")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            [AIRFLOW, *args],
            env=env,
            cwd=ROOT,
            stdout=self._file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        try:
            if self.alive():
                os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    pass
            # whatever the group still holds (Celery pool children, task runners)
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
        self._file.close()
