"""``make demo``: both sandboxes with the demo fixture + ``airflow standalone`` with our DAGs.

    python tools/demo.py [--port 8080] [--king-port 8701] [--qics-port 8702] [--home airflow_home]
                         [--first-run auto|yes|no]

Every start is a fresh start, by design, and it says so: the sandboxes keep their data in memory
and begin with the demo fixture, so the demo empties its Airflow home as well (run history,
sync-state store, logs; the login is kept). A state store that remembers records, watermarks or a
rotated Qics refresh token the fresh sandboxes never saw would make master data "succeed" with
nothing read and the invoice export fail with production advice. ``make clean`` removes the home.

The Airflow home (SQLite, LocalExecutor, our dags/ and plugins/, DAGs unpaused) has the demo's
settings in its airflow.cfg, so any ``airflow`` command run with AIRFLOW_HOME=<home> sees what the
demo sees; connections point at the sandboxes, one pool per administration and API. The login line
is printed once the UI answers. Outside the DAGs' 07:00-20:00 window (Amsterdam) the demo starts a
first run of each DAG (``--first-run auto``). Ctrl-C (or SIGTERM, SIGHUP) stops every process the
demo started: SIGTERM, then SIGKILL after ``STOP_GRACE`` seconds (a second Ctrl-C: at once).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "tools")]

from demo_home import AIRFLOW_PORT, administrations, airflow_env, prepare_airflow_home, reset_home  # noqa: E402
from demo_processes import Descendants, become_subreaper, start_in_own_session  # noqa: E402
from demo_runs import AMSTERDAM, AirflowApi, first_runs, outside_window  # noqa: E402

from sandbox.server import DEFAULT_KING_PORT, DEFAULT_QICS_PORT  # noqa: E402

STOP_GRACE = 15.0  # seconds between SIGTERM and SIGKILL
UI_TIMEOUT = 300.0
STOPPING = threading.Event()


def start_sandboxes(king_port: int, qics_port: int, timeout: float = 60) -> subprocess.Popen:
    """``python -m sandbox serve`` in a session of its own (a Ctrl-C reaches only the demo, which
    stops it with the rest), returned once both ports answer."""
    import requests

    args = [
        sys.executable,
        "-m",
        "sandbox",
        "serve",
        "--king-port",
        str(king_port),
        "--qics-port",
        str(qics_port),
    ]
    process = start_in_own_session(args, cwd=ROOT)
    deadline = time.monotonic() + timeout
    for port in (king_port, qics_port):
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/_sandbox/calls", timeout=2)
                break
            except requests.RequestException:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the sandboxes did not start on ports {king_port}/{qics_port}"
                    ) from None
                time.sleep(0.1)
    return process


def wait_for_ui(base: str, standalone: subprocess.Popen, timeout: float = UI_TIMEOUT) -> None:
    """Until the API server answers the health check and serves the UI's page."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            health = requests.get(f"{base}/api/v2/monitor/health", timeout=5)
            if health.status_code == 200 and requests.get(f"{base}/", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if standalone.poll() is not None:
            raise RuntimeError(
                f"airflow standalone exited (code {standalone.returncode}) before the UI answered"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Airflow UI did not answer within {timeout:.0f} s")
        time.sleep(1)


def say(text: str) -> None:
    try:
        print(f"demo       | {text}", flush=True)
    except OSError:  # the terminal is gone (SIGHUP): stopping goes on regardless
        pass


def window_note(first_run: str) -> list:
    """What the schedule means right now; the administrations to give a first run."""
    adms = administrations()
    now = datetime.now(UTC)
    outside = outside_window(adms, now)
    clock = now.astimezone(AMSTERDAM).strftime("%H:%M")
    if first_run == "no":
        return []
    if first_run == "yes":
        say(f"It is {clock} in Amsterdam; --first-run yes: a first run of each DAG once the UI is up.")
        return adms
    if outside:
        windows = ", ".join(sorted({f"{a.schedule.start}-{a.schedule.end}" for a in outside}))
        say(
            f"It is {clock} in Amsterdam, outside the DAGs' schedule ({windows}): nothing would run before "
            f"{min(a.schedule.start for a in outside)}. So the demo starts a first run of each DAG once the "
            "UI is up (master data, then projects/employees, then the invoice export)."
        )
        return outside
    adm = adms[0]
    say(
        f"It is {clock} in Amsterdam, inside the DAGs' schedule ({adm.schedule.start}-{adm.schedule.end}): "
        f"master data and the invoice export run every {adm.schedule.interval_minutes} minutes, "
        f"projects/employees every {adm.projects_employees_interval_minutes} minutes from "
        f"{adm.schedule.start}. Trigger a DAG in the UI to run it now (or start with --first-run yes)."
    )
    return []


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tools/demo.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=AIRFLOW_PORT, help="Airflow UI / API port")
    parser.add_argument("--king-port", type=int, default=DEFAULT_KING_PORT)
    parser.add_argument("--qics-port", type=int, default=DEFAULT_QICS_PORT)
    parser.add_argument("--home", type=Path, default=ROOT / "airflow_home", help="the demo's Airflow home")
    parser.add_argument(
        "--first-run",
        choices=("auto", "yes", "no"),
        default="auto",
        help="trigger each DAG once after the start: auto = when outside the DAGs' schedule window",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = args.home.resolve()
    hurry = threading.Event()

    def stop_now(signum, _frame):
        if STOPPING.is_set():
            hurry.set()  # a second Ctrl-C: no more grace
            return
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop_now)
    become_subreaper()
    descendants = Descendants()
    relay: list[int] = []  # airflow standalone: stopped after its components
    try:
        return run(args, home, relay)
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        say(f"failed: {exc}")
        return 1
    finally:
        STOPPING.set()
        say(
            f"stopping every process the demo started (SIGTERM, SIGKILL after {STOP_GRACE:.0f} s; "
            "Ctrl-C again: at once) ..."
        )
        took = descendants.stop(STOP_GRACE, hurry=hurry.is_set, say=say, last=lambda p: stops_last(p, relay))
        say(f"stopped in {took:.1f} s; nothing of the demo is running any more.")


def stops_last(process, relay: list[int]) -> bool:
    """Stopped after the rest: the API server (running tasks report their end to its execution API)
    and ``airflow standalone`` (it relays the components' output)."""
    if process.pid in relay:
        return True
    try:
        return any(word in ("api-server", "api_server") for word in " ".join(process.cmdline()).split())
    except Exception:  # gone meanwhile
        return False


def run(args: argparse.Namespace, home: Path, relay: list[int]) -> int:
    os.environ.update(airflow_env(home, args.port))  # before anything imports Airflow (it reads them once)
    say(
        "Fresh start, by design: the sandboxes hold the demo fixture in memory only, so the demo empties "
        f"its Airflow home {home} as well (run history, sync state, logs; your login stays). "
        "`make clean` removes it altogether."
    )
    if reset_home(home):
        say("  the previous demo's runs and sync state were removed.")
    give_first_run = window_note(args.first_run)
    king_base = f"http://127.0.0.1:{args.king_port}"
    qics_base = f"http://127.0.0.1:{args.qics_port}"
    start_sandboxes(args.king_port, args.qics_port)
    env = prepare_airflow_home(home, f"{king_base}/v1/ws1_xml.asmx", qics_base, args.port)
    passwords = home / "passwords.json"
    if not passwords.exists():
        passwords.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}))
    password = json.loads(passwords.read_text())["admin"]
    airflow = str(Path(sys.executable).parent / "airflow")
    standalone = start_in_own_session([airflow, "standalone"], env=env)
    relay.append(standalone.pid)
    ui = f"http://localhost:{args.port}"
    wait_for_ui(ui, standalone)
    print(
        f"\n  UI ready at {ui}   login: admin / {password}\n"
        f"  King sandbox: {king_base}/v1/ws1_xml.asmx   Qics sandbox: {qics_base}/api/V3/odata/\n"
        f"  Sync status: {ui}/king-qics/ (Browse -> King <-> Qics)   Ctrl-C stops everything.\n",
        flush=True,
    )
    if give_first_run:
        runner = threading.Thread(
            target=_first_runs, args=(AirflowApi(ui, "admin", password), give_first_run), daemon=True
        )
        runner.start()
    return standalone.wait()


def _first_runs(api, adms) -> None:
    try:
        first_runs(api, adms, say=say)
        say("first runs done: their counts and failures are on the King <-> Qics page.")
    except Exception as exc:  # the demo keeps running; the user can trigger by hand
        if not STOPPING.is_set():
            say(f"first runs stopped: {exc}")


if __name__ == "__main__":
    sys.exit(main())
