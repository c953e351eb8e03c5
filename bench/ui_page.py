"""The King <-> Qics page: how fast its pages load with 200 administrations and 100,000 records.

Fills a fresh SQLite state store (the default store) with synthetic sync state: synced records of
every administration (1 % failing, 0.5 % waiting for a link), 30 run reports per entity, an invoice
ledger and a reconciliation per administration; writes a config with that many administrations;
then requests every page and API route through Airflow's own API server app (in process, with a
viewer's JWT: authentication, queries, rendering). Target: every page under a second.

``python -m bench.ui_page [--quick]`` runs it alone; ``python -m bench --only ui_page`` with the rest.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml

from bench.harness import command, prepare_environment, row

FULL = (200, 100_000)
QUICK = (20, 10_000)
REPEAT = 5
TARGET_SECONDS = 1.0
ENTITIES = {  # share of an administration's records
    "vat_codes": 0.01,
    "payment_conditions": 0.01,
    "cost_centers": 0.03,
    "items": 0.10,
    "customers": 0.55,
    "employees": 0.05,
    "projects": 0.25,
}
RUNS_PER_ENTITY = 30
INVOICES_PER_ADMINISTRATION = 100
USER, PASSWORD = "bench-viewer", "bench-password"


def administration_ids(count: int) -> list[str]:
    return [f"adm{number:03d}" for number in range(1, count + 1)]


def write_config(directory: Path, ids: list[str]) -> Path:
    entries = [
        {
            "id": adm,
            "name": f"Administratie {adm} B.V.",
            "king_conn_id": f"king_{adm}",
            "qics_conn_id": "qics_bench",
            "qics_company_id": number,
            "sales_journal": 70,
            "book_invoices_from": date(2026, 1, 1),
        }
        for number, adm in enumerate(ids, start=1)
    ]
    path = directory / "administrations.yaml"
    path.write_text(yaml.safe_dump({"administrations": entries}, sort_keys=False), encoding="utf-8")
    return path


def fill_state_store(store, ids: list[str], records: int) -> None:
    import sqlalchemy as sa

    from king_qics.state import (
        invoice_exports,
        reconciliation_differences,
        reconciliations,
        run_reports,
        synced_records,
    )

    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    per_administration = records // len(ids)
    synced, runs, invoices, reconciled, differences = [], [], [], [], []
    for adm in ids:
        number = 0
        for entity, share in ENTITIES.items():
            count = max(1, round(per_administration * share))
            for key in range(count):
                number += 1
                failing = number % 100 == 0
                synced.append(
                    {
                        "administration": adm,
                        "entity": entity,
                        "king_key": str(10000 + key),
                        "qics_id": None if failing else number,
                        "record_hash": "0" * 64,
                        "record_json": "{}",
                        "synced_at": now,
                        "last_error": f"Qics rejected {entity}: Name: at most 50 characters"
                        if failing
                        else None,
                        "pending": "ManagerEmployeeCompanyId: waits for an employee"
                        if number % 200 == 7
                        else None,
                        "attempts": 3 if failing else 0,
                        "first_failed_at": now - timedelta(days=2) if failing else None,
                        "last_failed_at": now if failing else None,
                    }
                )
            for run in range(RUNS_PER_ENTITY):
                started = now - timedelta(minutes=15 * (RUNS_PER_ENTITY - run))
                runs.append(
                    {
                        "administration": adm,
                        "entity": entity,
                        "run_id": f"scheduled__{started.isoformat()}",
                        "started_at": started,
                        "finished_at": started + timedelta(seconds=20),
                        "full_read": run == 0,
                        "dry_run": False,
                        "read": count if run == 0 else 3,
                        "new": 0,
                        "changed": 1,
                        "unchanged": 2,
                        "failed": count // 100,
                        "pending": 0,
                    }
                )
            reconciled.append(
                {
                    "administration": adm,
                    "entity": entity,
                    "run_id": "scheduled__2026-11-29T06:00:00+00:00",
                    "started_at": now,
                    "finished_at": now,
                    "king_records": count,
                    "qics_records": count,
                    "differing_records": 2,
                    "differences": 2,
                }
            )
            differences += [
                {
                    "administration": adm,
                    "entity": entity,
                    "king_key": str(10000 + key),
                    "qics_id": key,
                    "kind": "field",
                    "field": "Name",
                    "expected": '"King name"',
                    "actual": '"Changed by hand"',
                }
                for key in range(2)
            ]
        for invoice in range(1, INVOICES_PER_ADMINISTRATION + 1):
            state = "marked" if invoice % 10 else ("selected" if invoice % 20 else "booking_sent")
            invoices.append(
                {
                    "administration": adm,
                    "invoice_id": invoice,
                    "invoice_number": f"F{invoice:06d}",
                    "invoice_date": date(2026, 11, 1),
                    "state": state,
                    "booking_key": f"70;2026;11;{invoice}" if state == "marked" else None,
                    "with_pdf": state == "marked",
                    "found_by_lookup": False,
                    "post_attempts": 1,
                    "booked_at": now if state == "marked" else None,
                    "marked_at": now if state == "marked" else None,
                    "last_error": "debtor 19999 does not exist in King" if state == "booking_sent" else None,
                    "attempts": 1 if state == "booking_sent" else 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    with store.transaction() as conn:
        for table, rows in (
            (synced_records, synced),
            (run_reports, runs),
            (invoice_exports, invoices),
            (reconciliations, reconciled),
            (reconciliation_differences, differences),
        ):
            conn.execute(sa.delete(table))
            conn.execute(sa.insert(table), rows)


def timed(client, url: str, headers: dict) -> tuple[float, float]:
    """(first request, slowest of the next REPEAT) in seconds."""
    times = []
    for _ in range(REPEAT + 1):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:300]}")
    return times[0], max(times[1:])


def run(quick: bool, size: str | None = None) -> list[dict]:
    count, records = QUICK if quick else FULL
    if size:
        count, records = (int(part) for part in size.split(","))
    cmd = command(quick, "ui_page") + (f" --size ui_page={size}" if size else "")
    directory = Path(tempfile.mkdtemp(prefix="kqs-bench-ui-"))
    ids = administration_ids(count)
    passwords = directory / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    env = {
        "KING_QICS_CONFIG": str(write_config(directory, ids)),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": "bench-ui-page-" + "x" * 50,
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        return _measure(cmd, ids, records)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _measure(cmd: str, ids: list[str], records: int) -> list[dict]:
    count = len(ids)
    # the API server checks every JWT against its table of revoked tokens: a migrated metadata DB
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    from king_qics.state import StateStore

    store = StateStore.from_settings()
    started = time.perf_counter()
    fill_state_store(store, ids, records)
    fill_seconds = time.perf_counter() - started

    client = TestClient(create_app())
    token = client.post("/auth/token", json={"username": USER, "password": PASSWORD}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    middle = ids[len(ids) // 2]
    pages = {
        "overview page (HTML)": "/king-qics/",
        "overview (JSON API)": "/king-qics/api/administrations",
        "one administration's page (HTML)": f"/king-qics/administrations/{middle}",
        "one administration (JSON API)": f"/king-qics/api/administrations/{middle}",
        "failing records, a page of 200 (HTML)": f"/king-qics/administrations/{middle}/lists/failing",
        "exported invoices, a page of 200 (JSON API)": (
            f"/king-qics/api/administrations/{middle}/lists/invoices_exported"
        ),
    }
    label = f"{count} administrations, {records:,} records"
    rows = [
        row(
            f"UI page data: {label}, {RUNS_PER_ENTITY} runs per entity, "
            f"{INVOICES_PER_ADMINISTRATION} invoices each",
            f"filled in {fill_seconds:.1f} s",
            command=cmd,
            kind="info",
        )
    ]
    warm_times = []
    for name, url in pages.items():
        first, warm = timed(client, url, headers)
        warm_times.append(warm)
        rows.append(
            row(
                f"UI {name}, {label}: slowest of {REPEAT} (first request)",
                f"{warm:.3f} s ({first:.3f} s)",
                f"< {TARGET_SECONDS:.0f} s",
                warm < TARGET_SECONDS and first < TARGET_SECONDS,
                command=cmd,
                kind="time",
            )
        )
    rows.append(
        row(
            f"UI median page load, {label}",
            f"{statistics.median(warm_times):.3f} s",
            command=cmd,
            kind="info",
        )
    )
    return rows


if __name__ == "__main__":
    prepare_environment()
    quick = "--quick" in sys.argv[1:]
    for result in run(quick):
        met = {True: "met", False: "MISSED", None: ""}[result["met"]]
        print(f"{result['figure']}: {result['value']} {result['target']} {met}")
