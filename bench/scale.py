"""Section 4 of issue 19: how many administrations one machine sustains, with Airflow's real scheduler.

``python -m bench.scale --admins N --executor local|celery [--workers W] [--cycles K] [--interval M]``
starts, on this machine's own services, a fresh PostgreSQL metadata database and sync-state store,
both sandboxes (one process, ``latency`` of 30 ms per call on both APIs), Airflow's api-server,
scheduler and dag-processor, and for ``celery`` W Celery workers (Redis broker); then N
administrations' DAGs run on their own timetables, compressed: the 15-minute window schedule becomes
a window of 1 + K cycles M minutes apart, starting a few minutes after the start (projects/employees
every 15 M, which the config takes, where 240 to 15 would be 16 M: only in the first cycle), so one
cycle = M minutes.
The first cycle is every administration's first sync (first run: full reads, the reconciliation);
the K cycles after it are steady state (nothing changed: the idle cycles the gate makes cheap).

Reported per cycle: DAG runs, task instances that ran (not skipped) and skipped, the time from the
cycle's start (its scheduled time) until its last run finished, the scheduler lag (scheduled time
-> the run's start, median and max), and per phase the CPU seconds of every component (scheduler,
dag-processor, api-server, executor workers with their task processes, sandboxes) per task instance
that ran; "our code" is the CPU of the same task callables run in this process for one
administration (the rest of a task process's CPU is Airflow's). Results go to
bench/scale.md (appended, one section per run). ``--quick``: 2 administrations, 1-minute
cycles, one idle cycle (tests/bench/test_scale_quick.py).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "tools")]

from bench.processes import PG, REDIS_URL, Component, airflow_env, flush_redis_db, pg_admin, run_airflow  # noqa: E402
from bench.scale_setup import (  # noqa: E402
    admin_id,
    connections,
    our_cpu,
    pools,
    sandbox_data,
    seed,
    window,
    write_config,
)
from king_qics.catalog import WATCHDOG_DAG_ID  # noqa: E402
from sandbox.server import free_port, start_process, stop_process  # noqa: E402

REDIS_DB = 12
RESULTS = ROOT / "bench" / "scale.md"
CYCLE_TARGET = 300.0  # seconds: every cycle done within 5 minutes


# -- processes ---------------------------------------------------------------------------------------


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process tree: every live process's own time plus that of the children it
    reaped (a finished task process is counted in the worker that waited for it)."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            t = process.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


# -- the metadata database ---------------------------------------------------------------------------


def runs(meta_dsn: str) -> list[dict]:
    import psycopg2
    import psycopg2.extras

    conn = psycopg2.connect(meta_dsn)
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(
                """
                SELECT r.dag_id, r.run_id, r.run_after, r.start_date, r.end_date, r.state,
                       count(ti.task_id) FILTER (WHERE ti.state = 'skipped') AS skipped,
                       count(ti.task_id) FILTER (WHERE ti.state IS NOT NULL AND ti.state <> 'skipped') AS ran,
                       count(ti.task_id) FILTER (WHERE ti.state = 'failed') AS failed
                FROM dag_run r LEFT JOIN task_instance ti ON ti.dag_id = r.dag_id AND ti.run_id = r.run_id
                WHERE r.run_type = 'scheduled' AND r.dag_id <> %s  -- the alerts' checks: not a cycle's
                GROUP BY r.dag_id, r.run_id, r.run_after, r.start_date, r.end_date, r.state
                """,
                (WATCHDOG_DAG_ID,),
            )
            return list(cur.fetchall())
    finally:
        conn.close()


def cycles(rows: list[dict]) -> list[dict]:
    """Scheduled runs grouped by their scheduled time: one group per cycle, oldest first."""
    groups: dict = {}
    for row in rows:
        groups.setdefault(row["run_after"], []).append(row)
    out = []
    for when in sorted(groups):
        group = groups[when]
        done = all(r["state"] in ("success", "failed") for r in group)
        lags = [(r["start_date"] - when).total_seconds() for r in group if r["start_date"]]
        ends = [r["end_date"] for r in group if r["end_date"]]
        out.append(
            {
                "scheduled": when,
                "runs": len(group),
                "done": done,
                "failed_runs": sum(r["state"] == "failed" for r in group),
                "ran": sum(r["ran"] for r in group),
                "skipped": sum(r["skipped"] for r in group),
                "failed_tis": sum(r["failed"] for r in group),
                "duration": (max(ends) - when).total_seconds() if done and ends else None,
                "lag_median": statistics.median(lags) if lags else None,
                "lag_max": max(lags) if lags else None,
                "kinds": sorted({r["dag_id"].rsplit("__", 1)[1] for r in group}),
            }
        )
    return out


# -- the run -----------------------------------------------------------------------------------------


def run(args) -> dict:
    suffix = secrets.token_hex(4)
    meta_db, state_db = f"kqs_scale_meta_{suffix}", f"kqs_scale_state_{suffix}"
    work = Path(tempfile.mkdtemp(prefix="kqs-scale-"))
    home, logs = work / "home", work / "logs"
    home.mkdir()
    logs.mkdir()
    components: list[Component] = []
    sandbox = None
    created: list[str] = []
    load_before = os.getloadavg()
    try:
        for name in (meta_db, state_db):
            pg_admin(f'CREATE DATABASE "{name}"')
            created.append(name)
        if args.executor == "celery":
            flush_redis_db(REDIS_DB)
        king_port, qics_port, api_port = free_port(), free_port(), free_port()
        sandbox_log = open(logs / "sandbox.log", "w")  # noqa: SIM115
        sandbox = start_process(king_port, qics_port, output=sandbox_log)
        king_base, qics_base = f"http://127.0.0.1:{king_port}", f"http://127.0.0.1:{qics_port}"
        king, qics = sandbox_data(args.admins)
        for base, section in ((king_base, king), (qics_base, qics)):
            requests.post(
                f"{base}/_sandbox/load", json={**section, "_base_dir": None}, timeout=300
            ).raise_for_status()
            rule = {"kind": "latency", "latency_seconds": args.latency}
            requests.post(f"{base}/_sandbox/faults", json={"faults": [rule]}, timeout=30).raise_for_status()
        start, end = window(args.lead, args.interval, 1 + args.cycles)
        config = write_config(work, args.admins, start, end, args.interval)

        pg = f"{PG['user']}@{PG['host']}:{PG['port']}"
        settings = {
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor" if args.executor == "celery" else "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(args.parallelism),
            # the DAG file of every administration, parsed as docker-compose.yaml has it
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(args.parse_interval),
            # every DAG's runs are created at the same cron minute: more per loop than the
            # default 10, or the scheduler itself spreads a cycle's start over many loops
            "AIRFLOW__SCHEDULER__MAX_DAGRUNS_TO_CREATE_PER_LOOP": str(args.dagruns_per_loop),
            "AIRFLOW__SCHEDULER__MAX_DAGRUNS_PER_LOOP_TO_SCHEDULE": str(args.dagruns_per_loop),
            "KING_QICS_CONFIG": str(config),
        }
        if args.executor == "celery":
            settings["AIRFLOW__CELERY__BROKER_URL"] = f"{REDIS_URL}/{REDIS_DB}"
            settings["AIRFLOW__CELERY__RESULT_BACKEND"] = f"db+postgresql://{pg}/{meta_db}"
            settings["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(args.concurrency)
        metadata_db, state_url = f"postgresql+psycopg2://{pg}/{meta_db}", f"postgresql://{pg}/{state_db}"
        meta_dsn = f"postgresql://{pg}/{meta_db}"
        env = airflow_env(home, metadata_db, state_url, api_port, **settings)
        env.update(connections(args.admins, f"{king_base}/v1/ws1_xml.asmx", qics_base))

        run_airflow(env, logs, "db", "migrate")
        (work / "pools.json").write_text(json.dumps(pools(args.admins)))
        run_airflow(env, logs, "pools", "import", str(work / "pools.json"))
        from king_qics.state import StateStore

        StateStore(f"postgresql+psycopg2://{pg}/{state_db}").create_schema()
        seeded = seed(config, args.admins, env) if args.seed else None
        if args.seed:  # the window starts from now again: the seeding took part of the lead
            start, end = window(args.lead, args.interval, 1 + args.cycles)
            config = write_config(work, args.admins, start, end, args.interval)

        specs = [
            ("api-server", ["api-server", "--port", str(api_port)]),
            ("scheduler", ["scheduler"]),
            ("dag-processor", ["dag-processor"]),
        ]
        if args.executor == "celery":
            for w in range(args.workers):
                specs.append(
                    (
                        f"celery-worker-{w + 1}",
                        [
                            "celery",
                            "worker",
                            "--concurrency",
                            str(args.concurrency),
                            "--celery-hostname",
                            f"w{w + 1}@%h",
                            "--pid",
                            str(home / f"worker-{w + 1}.pid"),
                            "--skip-serve-logs",  # one log server port per machine
                        ],
                    )
                )
        started = time.time()
        for name, cli in specs:
            components.append(Component(name, cli, env, logs))
        samples: list[dict] = []

        def sample() -> dict:
            cpu = {c.name: tree_cpu(c.process.pid) for c in components}
            cpu["sandboxes"] = tree_cpu(sandbox.pid)
            return {"at": datetime.now(UTC), "cpu": cpu, "load": os.getloadavg()}

        wanted = 1 + args.cycles
        deadline = started + args.timeout
        found: list[dict] = []
        while time.time() < deadline:
            for c in components:
                if not c.alive():
                    raise RuntimeError(f"{c.name} exited; see {c.log}")
            samples.append(sample())
            try:
                found = cycles(runs(meta_dsn))
            except Exception as exc:  # the schema may not be there yet
                print(f"(waiting: {exc})", file=sys.stderr)
                found = []
            done = [c for c in found if c["done"]]
            print(
                f"{time.time() - started:6.0f}s cycles={len(found)} done={len(done)} "
                f"load={os.getloadavg()[0]:.1f} last={found[-1] if found else None}",
                file=sys.stderr,
                flush=True,
            )
            if len(done) >= wanted and all(c["done"] for c in found[:wanted]):
                break
            time.sleep(10)
        samples.append(sample())
        ours = our_cpu(config, env, admin_id(0))
        return {
            "args": vars(args),
            "cycles": found[:wanted] if len(found) >= wanted else found,
            "all_cycles": found,
            "samples": samples,
            "ours": ours,
            "load_before": load_before,
            "load_after": os.getloadavg(),
            "logs": str(logs),
            "wall": time.time() - started,
            "seeded": seeded,
        }
    finally:
        for c in reversed(components):
            c.stop()
        if sandbox is not None:
            stop_process(sandbox)
        for name in created:
            try:
                pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # noqa: BLE001 - best effort clean-up
                print(f"could not drop {name}: {exc}", file=sys.stderr)


def cpu_between(samples: list[dict], start: datetime, end: datetime) -> dict[str, float]:
    """CPU per component between the samples nearest before ``start`` and after ``end``."""
    before = [s for s in samples if s["at"] <= start] or samples[:1]
    after = [s for s in samples if s["at"] >= end] or samples[-1:]
    a, b = before[-1]["cpu"], after[0]["cpu"]
    return {name: max(b[name] - a.get(name, 0.0), 0.0) for name in b}


def report(result: dict) -> str:
    args = result["args"]
    shape = "LocalExecutor" if args["executor"] == "local" else f"CeleryExecutor, {args['workers']} worker(s)"
    cmd = (
        f"python -m bench.scale --admins {args['admins']} --executor {args['executor']}"
        + (" --seed" if args.get("seed") else "")
        + (f" --workers {args['workers']}" if args["executor"] == "celery" else "")
        + f" --cycles {args['cycles']} --interval {args['interval']}"
    )
    lines = [
        f"### {args['admins']} administrations, {shape}",
        "",
        f"`{cmd}` (latency {args['latency'] * 1000:.0f} ms per call on both sandboxes, cycle = "
        f"{args['interval']} min, parallelism {args['parallelism']}"
        + (f", worker concurrency {args['concurrency']}" if args["executor"] == "celery" else "")
        + f"); load average before {result['load_before'][0]:.1f} / {result['load_before'][1]:.1f}, "
        f"after {result['load_after'][0]:.1f} / {result['load_after'][1]:.1f} (1 / 5 min); "
        f"{os.cpu_count()} cores.",
        "",
        "| cycle | scheduled (UTC) | DAG runs | task instances ran / skipped / failed "
        "| start -> last run done | within 5 min | scheduler lag median / max "
        "| CPU s per task instance that ran (all components) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    samples = result["samples"]
    for number, cycle in enumerate(result["cycles"], start=1):
        kind = "first sync" if number == 1 and result["seeded"] is None else "steady state"
        duration = cycle["duration"]
        end = cycle["scheduled"] + timedelta(seconds=duration or 0)
        cpu = cpu_between(samples, cycle["scheduled"], end)
        total = sum(cpu.values())
        per_ti = total / cycle["ran"] if cycle["ran"] else float("nan")
        lines.append(
            f"| {number} ({kind}; {', '.join(cycle['kinds'])}) | {cycle['scheduled']:%H:%M} "
            f"| {cycle['runs']} | "
            f"{cycle['ran']} / {cycle['skipped']} / {cycle['failed_tis']} | "
            + (f"{duration:.0f} s" if duration is not None else "not finished")
            + f" | {'yes' if duration is not None and duration <= CYCLE_TARGET else '**no**'} | "
            f"{cycle['lag_median']:.1f} s / {cycle['lag_max']:.1f} s | {per_ti:.2f} "
            f"({', '.join(f'{k} {v:.0f}' for k, v in sorted(cpu.items()))} s) |"
        )
    ours = result["ours"]
    if "error" in ours:
        lines += ["", f"Our code's CPU could not be measured: {ours['error']}"]
    else:
        lines += [
            "",
            "Our code per idle task instance (the callable alone, in one process, same sandboxes): "
            + ", ".join(f"{name} {value * 1000:.0f} ms" for name, value in ours.items())
            + "; the rest of a task instance's CPU above is Airflow's (task process start, DAG "
            "parse, API calls of the task runner, scheduling, executor).",
        ]
    if result["seeded"] is not None:
        lines += [
            "",
            f"Every administration's first sync ran before the scheduler started ({result['seeded']:.0f} s, "
            "4 processes, the task callables in DAG order, `--seed`): every cycle above is steady state.",
        ]
    lines += ["", f"Logs: `{result['logs']}`; wall time {result['wall']:.0f} s.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admins", type=int, default=200)
    parser.add_argument("--executor", choices=("local", "celery"), default="local")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16, help="Celery worker concurrency")
    parser.add_argument("--parallelism", type=int, default=32)
    parser.add_argument("--dagruns-per-loop", type=int, default=200)
    parser.add_argument(
        "--parse-interval", type=int, default=300, help="[dag_processor] min_file_process_interval, s"
    )
    parser.add_argument("--cycles", type=int, default=2, help="steady-state cycles after the first")
    parser.add_argument("--interval", type=int, default=5, help="compressed cycle, minutes")
    parser.add_argument("--latency", type=float, default=0.03, help="seconds per call, both sandboxes")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument(
        "--seed", action="store_true", help="run every first sync before the scheduler: all cycles steady"
    )
    parser.add_argument("--lead", type=float, default=180, help="seconds from now to the first cycle")
    parser.add_argument(
        "--quick", action="store_true", help="2 administrations, 1-minute cycles, 1 idle cycle"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.admins, args.interval, args.cycles, args.timeout, args.lead = 2, 1, 1, 600, 75
    output = args.output
    del args.output
    result = run(args)
    text = report(result)
    print(text)
    with open(output, "a", encoding="utf-8") as handle:
        handle.write(text + "\n")
    (Path(result["logs"]).parent / "result.json").write_text(json.dumps(result, default=str, indent=1))
    complete = len(result["cycles"]) == 1 + args.cycles and all(c["done"] for c in result["cycles"])
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
