"""What the scale benchmark (bench/scale.py) sets up before the scheduler starts: the sandboxes'
data for N administrations, their config with the compressed window, connections and pools, every
administration's first sync (``--seed``), and our code's own CPU per idle task instance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "tools")]

from sandbox import universe  # noqa: E402

DEBTORS = 3  # per administration (with the generator's VAT codes, conditions, cost centers, items)


# -- data and config ---------------------------------------------------------------------------------


def admin_id(i: int) -> str:
    return f"a{i:04d}"


def sandbox_data(count: int) -> tuple[dict, dict]:
    """King: ``count`` administrations (environment codes 9xxxx) like the generator's first; Qics: one
    company per administration (CompanyId 100 + i), nothing synced yet, no invoices."""
    from sandbox.king.generate import generate_section

    king = generate_section(DEBTORS, seed=1)
    template = king["administrations"][0]
    king["administrations"] = [
        {**template, "environment_code": f"9{i:04d}", "adm_number": 3000 + i, "name": f"Administratie {i}"}
        for i in range(count)
    ]
    companies = [
        {"CompanyId": str(100 + i), "Name": f"Administratie {i}", "Code": f"A{i:04d}", "CurrencyId": "1"}
        for i in range(count)
    ]
    return king, {"entities": {"Company": companies}}


def window(lead_seconds: float, interval: int, cycles: int) -> tuple[str, str]:
    """The compressed day: the first cycle ``lead_seconds`` from now (time for the components to
    start and the DAGs to be parsed), then one every ``interval`` minutes, ``cycles`` cycles in all
    (Amsterdam time, as the config's schedule). Only this window, so the timetable stays a few crons
    (every minute of the day would be 60 crons, a description PostgreSQL's dag table refuses)."""
    import pendulum

    first = pendulum.now("Europe/Amsterdam").add(seconds=lead_seconds)
    first = first.add(minutes=1).replace(second=0, microsecond=0)
    last = first.add(minutes=interval * (cycles - 1))
    if last.date() != first.date():
        raise SystemExit("the benchmark's window would cross midnight (Amsterdam): run it later")
    return first.format("HH:mm"), last.format("HH:mm")


def write_config(folder: Path, count: int, start: str, end: str, interval: int) -> Path:
    shipped = yaml.safe_load((ROOT / "include" / "administrations.yaml").read_text(encoding="utf-8"))
    template = shipped["administrations"][0]
    entries = []
    for i in range(count):
        entry = {
            **template,
            "id": admin_id(i),
            "name": f"Administratie {i}",
            "king_conn_id": f"king_{admin_id(i)}",
            "qics_conn_id": "qics_sandbox",
            "qics_company_id": 100 + i,
            "schedule": {"start": start, "end": end, "interval_minutes": interval},
            "projects_employees_interval_minutes": min(15 * interval, 1440),  # only the first cycle
        }
        entries.append(entry)
    path = folder / "administrations.yaml"
    path.write_text(yaml.safe_dump({"administrations": entries}, sort_keys=False), encoding="utf-8")
    return path


def connections(count: int, king_url: str, qics_url: str) -> dict[str, str]:
    env = {}
    for i in range(count):
        extra = {"partner_key": universe.KING_TEST_PARTNER_KEY, "environment_code": f"9{i:04d}"}
        env[f"AIRFLOW_CONN_KING_{admin_id(i).upper()}"] = json.dumps(
            {"conn_type": "king_finance", "host": king_url, "extra": json.dumps(extra)}
        )
    qics = {
        "client_id": universe.QICS_CLIENT_ID,
        "client_secret": universe.QICS_CLIENT_SECRET,
        "refresh_token": universe.QICS_INITIAL_REFRESH_TOKEN,
    }
    env["AIRFLOW_CONN_QICS_SANDBOX"] = json.dumps(
        {"conn_type": "qics_milestones", "host": qics_url, "extra": json.dumps(qics)}
    )
    return env


def pools(count: int) -> dict:
    return {
        f"king_qics__{admin_id(i)}__{api}": {
            "slots": 1,
            "description": f"{admin_id(i)} {api}",
            "include_deferred": False,
        }
        for i in range(count)
        for api in ("king", "qics")
    }


# -- the first sync, before the scheduler starts -------------------------------------------------------


def seed_chunk(config: str, administrations: list[str]) -> None:
    """Every administration's first sync, as its DAGs' tasks run it (the same callables, in order,
    in this process): the master-data gate, the entities (then what the gate read counts as synced,
    as the entity tasks store it), the reconciliation, projects/employees and the invoice selection.
    So the scheduler's cycles are the steady state."""
    from king_qics import catalog
    from king_qics.errors import RecordsNotSynced
    from king_qics.mapping import load_mapping
    from king_qics.state import StateStore
    from king_qics.sync.gate import store_synced_fingerprint
    from king_qics.tasks.gate import check_for_work
    from king_qics.tasks.invoices import select_invoices
    from king_qics.tasks.master_data import reconcile, sync_master_data

    store = StateStore.from_settings(os.environ["KING_QICS_STATE_CONN_ID"])
    ctx = {"params": {"full_refresh": False, "dry_run": False}, "run_id": "bench-seed"}
    master = [e.name for e in catalog.entities_of(catalog.DagKind.MASTER_DATA)]
    for adm in administrations:
        gate = check_for_work(config, adm, catalog.DagKind.MASTER_DATA.value, **ctx)
        for entity in master:
            try:
                sync_master_data(config, adm, entity, **ctx)
            except RecordsNotSynced as exc:
                print(f"{adm} {entity}: {exc}", file=sys.stderr)
            store_synced_fingerprint(
                store, adm, gate, load_mapping(entity).king_table_for(_administration(config, adm))
            )
        reconcile(config, adm, master, **ctx)
        gate = check_for_work(config, adm, catalog.DagKind.PROJECTS_EMPLOYEES.value, **ctx)
        for entity in catalog.entities_of(catalog.DagKind.PROJECTS_EMPLOYEES):
            sync_master_data(config, adm, entity.name, **ctx)
            store_synced_fingerprint(
                store, adm, gate, load_mapping(entity.name).king_table_for(_administration(config, adm))
            )
        sync_master_data(config, adm, "customers", pending_only=True, **ctx)
        select_invoices(config, adm, **ctx)


def _administration(config: str, administration_id: str):
    from king_qics.tasks import administration

    return administration(config, administration_id)[0]


def seed(config: Path, count: int, env: dict, processes: int = 4) -> float:
    """The first sync of ``count`` administrations in ``processes`` parallel processes; seconds."""
    started = time.time()
    ids = [admin_id(i) for i in range(count)]
    children = []
    for part in range(processes):
        chunk = ids[part::processes]
        if not chunk:
            continue
        code = f"from bench.scale_setup import seed_chunk; seed_chunk({str(config)!r}, {chunk!r})"
        children.append(subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT))
    codes = [child.wait() for child in children]
    if any(codes):
        raise RuntimeError(f"seeding failed: exit codes {codes}")
    return time.time() - started


# -- our code's own CPU per task instance --------------------------------------------------------------


def our_cpu(config: Path, env: dict, administration: str) -> dict[str, float]:
    """The idle cycle's two task callables (the master-data gate and the invoice selection) for one
    administration, in a fresh process against the same sandboxes and state store: CPU per call."""
    script = f"""
import json, time, sys
sys.path[:0] = {[str(ROOT), str(ROOT / "plugins")]!r}
from king_qics.tasks.gate import check_for_work
from king_qics.tasks.invoices import select_invoices
ctx = {{"params": {{"full_refresh": False, "dry_run": False}}, "run_id": "bench"}}
out = {{}}
config, adm = {str(config)!r}, {administration!r}
calls = (
    ("check_king", lambda: check_for_work(config, adm, "master_data", **ctx)),
    ("select", lambda: select_invoices(config, adm, **ctx)),
)
for name, call in calls:
    call()
    started = time.process_time()
    for _ in range(5):
        call()
    out[name] = (time.process_time() - started) / 5
print(json.dumps(out))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        return {"error": result.stderr[-500:]}
    return json.loads(result.stdout.strip().splitlines()[-1])
