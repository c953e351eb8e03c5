"""What every figure needs: a throw-away Airflow home and state store, both sandboxes on free ports
with Airflow connections (AIRFLOW_CONN_*) to them, a one-administration config, and the sync run
the way the DAG tasks run it (king_qics.tasks, real hooks, in this process).

``prepare_environment()`` must run before anything imports Airflow (it reads AIRFLOW_HOME once).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
LATENCY_ENV = "KQS_BENCH_LATENCY_MS"  # set by ``python -m bench --latency-ms``
DEFAULT_LATENCY_MS = 30.0
ADMINISTRATION = "noord"  # universe.ADMINISTRATIONS[0]: what the generators build
MASTER_DATA_ENTITIES = ["vat_codes", "payment_conditions", "cost_centers", "items", "customers"]
OLD_MUTDATE = "2026-06-01T09:00:00+02:00"  # long before any run: steady state reads nothing
SESSION_OPERATIONS = ("Login", "Logout", "KeepSession")


def prepare_environment() -> Path:
    """A temporary Airflow home (SQLite, no examples) as this process's environment."""
    if "airflow" in sys.modules:
        raise RuntimeError("prepare_environment() must run before Airflow is imported")
    home = Path(tempfile.mkdtemp(prefix="kqs-bench-home-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        }
    )
    os.environ.pop("KING_QICS_STATE_CONN_ID", None)  # the SQLite store in the temporary home
    return home


def latency_ms() -> float:
    """The sandbox latency per call of the throughput figures (``--latency-ms``, default 30 ms)."""
    return float(os.environ.get(LATENCY_ENV, DEFAULT_LATENCY_MS))


def command(quick: bool, module: str) -> str:
    latency = "" if latency_ms() == DEFAULT_LATENCY_MS else f"--latency-ms {latency_ms():g} "
    return f"python -m bench {'--quick ' if quick else ''}{latency}--only {module}"


def row(figure: str, value, target: str = "", met: bool | None = None, *, command: str, kind: str) -> dict:
    """One line of RESULTS.md. ``kind``: count (asserted by --quick), time, ratio, memory, info."""
    return {"figure": figure, "value": value, "target": target, "met": met, "command": command, "kind": kind}


def pages(records: int, page_size: int) -> int:
    return max(1, math.ceil(records / page_size))


# -- sandboxes ---------------------------------------------------------------------------------------


class Sandboxes:
    """Both emulators in their own process (``python -m sandbox serve``) on free ports, every
    emulated call delayed by ``latency_ms`` (kept across loads)."""

    def __init__(self, latency_ms: float = 0.0) -> None:
        from sandbox.server import free_port, start_process

        self.latency_ms = latency_ms
        self.king_port, self.qics_port = free_port(), free_port()
        self.log_path = Path(tempfile.mkdtemp(prefix="kqs-bench-sandbox-")) / "sandbox.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop())
        self.process = start_process(self.king_port, self.qics_port, output=self._log, latency_ms=latency_ms)
        self.king_url = f"http://127.0.0.1:{self.king_port}/v1/ws1_xml.asmx"
        self.qics_url = f"http://127.0.0.1:{self.qics_port}"

    def stop(self) -> None:
        from sandbox.server import stop_process

        stop_process(self.process)
        self._log.close()

    def _admin(self, api: str, method: str, path: str, **kwargs):
        port = self.king_port if api == "king" else self.qics_port
        response = requests.request(method, f"http://127.0.0.1:{port}/_sandbox/{path}", timeout=600, **kwargs)
        response.raise_for_status()
        return response.json()

    def load(self, king: dict, qics: dict) -> None:
        """Replace both emulators' data (this also resets their call counters and faults)."""
        self._admin("king", "POST", "load", json=king)
        self._admin("qics", "POST", "load", json=qics)

    def calls(self, api: str) -> dict[str, int]:
        return self._admin(api, "GET", "calls")

    def reset_calls(self) -> None:
        for api in ("king", "qics"):
            self._admin(api, "DELETE", "calls")

    def peak_in_flight(self, api: str) -> int:
        """The most requests the emulator handled at once since the last load."""
        return self._admin(api, "GET", "faults")["peak_in_flight"]

    def peak_rss_mb(self) -> float | None:
        return peak_rss_mb_of(self.process.pid)

    def connect(self) -> None:
        """The demo's Airflow connections, pointing at these sandboxes, as AIRFLOW_CONN_* variables."""
        sys.path.insert(0, str(ROOT / "tools"))
        from demo_home import sandbox_connections

        for conn_id, conn in sandbox_connections(self.king_url, self.qics_url).items():
            os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)


@contextmanager
def sandboxes(latency_ms: float = 0.0):
    running = Sandboxes(latency_ms)
    try:
        running.connect()
        yield running
    finally:
        running.stop()


def peak_rss_mb_of(pid: int | str = "self") -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# -- data ----------------------------------------------------------------------------------------------


def king_data(debtors: int, seed: int = 1) -> dict:
    """The generated King administration with every record last changed long ago, so that an
    incremental read after the first sync finds nothing (the generator stamps the load time)."""
    from sandbox.king.generate import generate_section

    section = generate_section(debtors, seed)
    for administration in section["administrations"]:
        for rows in administration["tables"].values():
            for record in rows:
                record["_mutdate"] = OLD_MUTDATE
    return section


def qics_empty_company() -> dict:
    """Qics with only the administration's company: nothing synced yet."""
    from sandbox import universe

    adm = universe.ADMINISTRATIONS[0]
    company = {
        "CompanyId": str(adm["qics_company_id"]),
        "Name": adm["name"],
        "Code": adm["qics_company_code"],
        "CurrencyId": "1",
    }
    return {"entities": {"Company": [company]}}


def write_config(folder: Path, count: int = 1, *, write_concurrency: int | None = None) -> Path:
    """administrations.yaml with ``count`` administrations like the first one of the shipped file
    (``write_concurrency``: their qics_write_concurrency, else the shipped one)."""
    shipped = yaml.safe_load((ROOT / "include" / "administrations.yaml").read_text(encoding="utf-8"))
    template = next(adm for adm in shipped["administrations"] if adm["id"] == ADMINISTRATION)
    if write_concurrency is not None:
        template = {**template, "qics_write_concurrency": write_concurrency}
    entries = [template] + [
        {**template, "id": f"adm_{i:04d}", "king_conn_id": f"king_adm_{i:04d}", "qics_company_id": 100 + i}
        for i in range(1, count)
    ]  # each its own books: the config refuses two entries for the same King or Qics books
    path = folder / f"administrations_{count}{f'_w{write_concurrency}' if write_concurrency else ''}.yaml"
    path.write_text(yaml.safe_dump({"administrations": entries}, sort_keys=False), encoding="utf-8")
    return path


# -- the sync, as the DAG tasks run it ---------------------------------------------------------------


def reset_state() -> None:
    """An empty sync-state store and no cached OAuth token (as on a new installation)."""
    from king_qics.hooks.qics.oauth import clear_process_cache
    from king_qics.state import StateStore, metadata

    store = StateStore.from_settings()
    metadata.drop_all(store.engine)
    metadata.create_all(store.engine)
    clear_process_cache()


def sync_entities(config: Path, entities: list[str], *, full_refresh: bool = False) -> dict[str, dict]:
    """Each entity through king_qics.tasks.master_data.sync_master_data, the DAG tasks' callable."""
    from king_qics.tasks.master_data import sync_master_data

    context = {"params": {"full_refresh": full_refresh, "dry_run": False}, "run_id": "bench"}
    return {entity: sync_master_data(str(config), ADMINISTRATION, entity, **context) for entity in entities}


def export_invoices(config: Path) -> dict[str, dict]:
    """The invoice export DAG's select and export tasks (king_qics.tasks.invoices)."""
    from king_qics.tasks.invoices import export_invoices, select_invoices

    context = {"params": {"full_refresh": False, "dry_run": False}, "run_id": "bench"}
    steps = {"select": select_invoices, "export": export_invoices}
    return {name: step(str(config), ADMINISTRATION, **context) for name, step in steps.items()}


def expire_daily_full_read() -> None:
    """Make the next run the day's first after 07:00: every table's last full read was two days ago."""
    import datetime as dt

    import sqlalchemy as sa

    from king_qics.state import StateStore, utcnow, watermarks

    store = StateStore.from_settings()
    with store.transaction() as conn:
        conn.execute(sa.update(watermarks).values(last_full_read_at=utcnow() - dt.timedelta(days=2)))


@contextmanager
def cpu_waits(*pids: int):
    """Seconds the threads of each process (and of this one) spent runnable but waiting for a CPU
    (the run-queue delay of /proc/PID/task/TID/schedstat), sampled every 50 ms so that threads
    that end meanwhile count too. On a shared machine this is the part of a wall time that no
    code of ours or the sandboxes' could have made shorter."""
    import threading

    watched = [os.getpid(), *pids]
    seen: dict[tuple[int, str], int] = {}
    start: dict[tuple[int, str], int] = {}
    result: dict[int, float] = {}

    def sample(first: bool = False) -> None:
        for pid in watched:
            for path in Path(f"/proc/{pid}/task").glob("*/schedstat"):
                try:
                    waited = int(path.read_text().split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                key = (pid, path.parent.name)
                start.setdefault(key, waited if first else 0)  # a thread started since: all of it
                seen[key] = waited

    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.05):
            sample()

    sample(first=True)
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        sample()
        for (pid, tid), waited in seen.items():
            result[pid] = result.get(pid, 0.0) + (waited - start[(pid, tid)]) / 1e9
        result["ours"] = result.pop(os.getpid(), 0.0)


@contextmanager
def measured():
    """Wall and CPU time of this process (the client side; the sandboxes run in another process)."""
    times: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield times
    finally:
        times["wall"] = time.perf_counter() - wall
        times["cpu"] = time.process_time() - cpu


def writes(calls: dict[str, int]) -> int:
    """Qics writes among the sandbox's counted operations."""
    return sum(
        n
        for op, n in calls.items()
        if op.split(" ")[0] in ("POST", "PUT", "PATCH", "DELETE") and op != "POST token"
    )


def reads(calls: dict[str, int]) -> int:
    return sum(n for op, n in calls.items() if op.startswith("GET ") and op != "GET auth")


def run_child(args: list[str], timeout: float = 3600) -> dict:
    """``python -m bench.<args>`` in a fresh process with this environment; its last stdout line is JSON."""
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
