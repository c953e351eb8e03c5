"""DAG integrity: the DAG file parses in a fresh process without touching the network, a connection,
a variable or a heavy library; every administration gets its DAGs with the agreed conventions; a
broken config entry is one clear import error while the others still load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pendulum
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "include" / "administrations.yaml"

# Runs in a fresh interpreter: parse dags/ with DagBag while any network access, connection or
# variable lookup raises; report what was bagged and which heavy modules got imported.
PARSE_SCRIPT = textwrap.dedent(
    """
    import json, socket, sys

    def forbidden(what):
        def fail(*args, **kwargs):
            raise RuntimeError(f"DAG parsing must not use {what}")
        return fail

    socket.socket.connect = forbidden("the network")
    socket.create_connection = forbidden("the network")
    from airflow.sdk import BaseHook, Variable
    BaseHook.get_connection = classmethod(forbidden("connections"))
    Variable.get = staticmethod(forbidden("variables"))

    from airflow.dag_processing.dagbag import DagBag
    before = set(sys.modules)
    bag = DagBag(dag_folder=sys.argv[1])
    dags = {}
    for dag_id, dag in sorted(bag.dags.items()):
        tasks = {
            t.task_id: {
                "pool": t.pool, "retries": t.retries, "upstream": sorted(t.upstream_task_ids),
                "backoff": float(t.retry_exponential_backoff or 0),
            }
            for t in dag.tasks
        }
        dags[dag_id] = {
            "tags": sorted(dag.tags), "max_active_runs": dag.max_active_runs, "catchup": dag.catchup,
            "doc_md": bool(dag.doc_md and dag.doc_md.strip()), "tasks": tasks,
            "params": sorted(dag.params.keys()), "manual": type(dag.timetable).__name__ == "NullTimetable",
            "administrations": dag.params.get_param("administration").schema.get("enum")
            if "administration" in dag.params else None,
        }
    heavy = sorted(
        m for m in ("pandas", "numpy", "requests", "lxml", "sqlalchemy", "king_qics.hooks")
        if m in sys.modules and m not in before
    )
    print(json.dumps({"dags": dags, "errors": bag.import_errors, "heavy": heavy}))
    """
)


def parse_dags(tmp_path: Path, config: Path | None = None) -> dict:
    env = {"KING_QICS_CONFIG": str(config)} if config else {}
    result = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, str(ROOT / "dags")],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/nodb.db"},
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    return parse_dags(tmp_path_factory.mktemp("parse"))


def administration_ids() -> list[str]:
    return sorted(entry["id"] for entry in yaml.safe_load(CONFIG.read_text())["administrations"])


def test_no_import_errors_and_no_heavy_imports(parsed):
    assert parsed["errors"] == {}
    assert parsed["heavy"] == [], "the DAG file must not import heavy libraries at parse time"


def test_each_administration_has_its_dags(parsed):
    expected = {
        f"king_qics__{adm}__{kind}"
        for adm in administration_ids()
        for kind in ("master_data", "projects_employees", "invoice_export")
    }
    global_dags = {"king_qics__preflight", "king_qics__alerts", "king_qics__maintenance"}
    assert expected | global_dags == set(parsed["dags"])


def test_conventions(parsed):
    for dag_id, dag in parsed["dags"].items():
        if dag_id in ("king_qics__preflight", "king_qics__alerts", "king_qics__maintenance"):
            continue  # manual only, or the alerts' checks (their own tests)
        adm = dag_id.split("__")[1]
        assert f"administration:{adm}" in dag["tags"], dag_id
        assert any(tag.startswith("direction:") for tag in dag["tags"]), dag_id
        assert dag["max_active_runs"] == 1 and dag["catchup"] is False, dag_id
        assert dag["doc_md"], dag_id
        assert {"full_refresh", "dry_run"} <= set(dag["params"]), dag_id
        for task_id, task in dag["tasks"].items():
            assert task["retries"] >= 2 and task["backoff"] > 0, (dag_id, task_id)
            assert task["pool"].startswith(f"king_qics__{adm}__"), (dag_id, task_id)


def test_the_preflight_dag_has_a_task_per_administration_in_its_king_pool(parsed):
    dag = parsed["dags"]["king_qics__preflight"]
    assert set(dag["tasks"]) == {f"preflight_{adm}" for adm in administration_ids()}
    assert all(task["pool"] == f"king_qics__{tid[10:]}__king" for tid, task in dag["tasks"].items())
    assert {"administration", "write_probe", "journal"} <= set(dag["params"]) and dag["doc_md"]
    assert "preflight" in dag["tags"] and dag["max_active_runs"] == 1


def test_the_alerts_dag_checks_every_ten_minutes(parsed):
    dag = parsed["dags"]["king_qics__alerts"]
    assert set(dag["tasks"]) == {"watch"} and "alerts" in dag["tags"] and dag["doc_md"]
    assert dag["max_active_runs"] == 1 and dag["catchup"] is False


def test_one_manual_maintenance_dag_for_every_administration(parsed):
    dag = parsed["dags"]["king_qics__maintenance"]
    assert set(dag["tasks"]) == {"accept_records", "accept_invoices"}
    assert all(task["retries"] == 0 for task in dag["tasks"].values())  # a person triggers again
    assert dag["params"] == ["accept_invoices", "accept_records", "administration", "note"]
    assert dag["administrations"] == ["", *administration_ids()]  # the form's choice, none by default
    assert "maintenance" in dag["tags"] and dag["doc_md"] and dag["manual"]
    assert dag["max_active_runs"] == 1 and dag["catchup"] is False


def test_master_data_task_order(parsed):
    for adm in administration_ids():
        tasks = parsed["dags"][f"king_qics__{adm}__master_data"]["tasks"]
        entities = {"vat_codes", "payment_conditions", "cost_centers", "items", "customers"}
        assert set(tasks) == entities | {"check_king", "reconcile"}
        assert set(tasks["reconcile"]["upstream"]) == entities  # after them: never delays the sync
        assert tasks["items"]["upstream"] == ["vat_codes"]
        assert tasks["customers"]["upstream"] == ["cost_centers", "payment_conditions", "vat_codes"]
        for first in ("vat_codes", "payment_conditions", "cost_centers"):
            assert tasks[first]["upstream"] == ["check_king"]  # the gate: idle runs end there
        assert tasks["check_king"]["upstream"] == []


def test_projects_employees_task_order(parsed):
    for adm in administration_ids():
        tasks = parsed["dags"][f"king_qics__{adm}__projects_employees"]["tasks"]
        assert tasks["employees"]["upstream"] == ["check_king"]
        assert tasks["projects"]["upstream"] == ["employees"]
        assert tasks["customer_managers"]["upstream"] == ["employees"]


def test_broken_entry_is_one_clear_import_error_and_others_still_load(tmp_path):
    config = yaml.safe_load(CONFIG.read_text())
    broken_id = config["administrations"][0]["id"]
    config["administrations"][0]["qics_company_id"] = "not-a-number"
    path = tmp_path / "administrations.yaml"
    path.write_text(yaml.safe_dump(config))
    parsed = parse_dags(tmp_path, path)
    assert len(parsed["errors"]) == 1
    (message,) = parsed["errors"].values()
    assert broken_id in message and "qics_company_id" in message
    others = [adm for adm in administration_ids() if adm != broken_id]
    assert others and all(f"king_qics__{adm}__master_data" in parsed["dags"] for adm in others)
    assert not any(dag_id.startswith(f"king_qics__{broken_id}__") for dag_id in parsed["dags"])


def test_two_entries_for_the_same_books_are_one_import_error_naming_both(tmp_path):
    config = yaml.safe_load(CONFIG.read_text())
    twin = {**config["administrations"][0], "id": "noord_twin", "king_conn_id": "king_noord_twin"}
    config["administrations"].append(twin)  # the same Qics company as noord
    path = tmp_path / "administrations.yaml"
    path.write_text(yaml.safe_dump(config))
    parsed = parse_dags(tmp_path, path)
    (message,) = parsed["errors"].values()
    assert "'noord' (entry 1) and 'noord_twin' (entry 3)" in message and "booked twice" in message
    assert not any(d.startswith(("king_qics__noord__", "king_qics__noord_twin__")) for d in parsed["dags"])
    assert "king_qics__zuid__invoice_export" in parsed["dags"]


def _run_times(dag_id: str, start: pendulum.DateTime, count: int) -> list[pendulum.DateTime]:
    """The next ``count`` scheduled run times after ``start`` (catchup-style, as the scheduler plans)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    timetable = coerce_to_core_timetable(bag.dags[dag_id].timetable)
    restriction = TimeRestriction(earliest=start, latest=None, catchup=True)
    times, last = [], None
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        times.append(info.run_after.in_timezone("Europe/Amsterdam"))
        last = info.data_interval if info.data_interval else DataInterval(info.run_after, info.run_after)
    return times


@pytest.mark.parametrize(
    "day",
    [
        pendulum.datetime(2026, 3, 28, tz="Europe/Amsterdam"),  # the day before summer time starts
        pendulum.datetime(2026, 10, 24, tz="Europe/Amsterdam"),  # the day before winter time starts
    ],
)
def test_master_data_schedule_every_15_minutes_0700_to_2000_across_dst(day):
    adm = administration_ids()[0]
    times = _run_times(f"king_qics__{adm}__master_data", day, 53 * 3)
    by_day: dict = {}
    for time in times:
        by_day.setdefault(time.date(), []).append(time.strftime("%H:%M"))
    expected = [f"{h:02d}:{m:02d}" for h in range(7, 20) for m in (0, 15, 30, 45)] + ["20:00"]
    for date, slots in by_day.items():
        assert slots == expected, date
    assert len(by_day) == 3  # the Saturday, the DST Sunday and the Monday all run 07:00..20:00 local


def test_projects_employees_every_240_minutes_inside_the_window():
    adm = administration_ids()[0]
    times = _run_times(
        f"king_qics__{adm}__projects_employees", pendulum.datetime(2026, 3, 28, tz="Europe/Amsterdam"), 12
    )
    slots = [time.strftime("%a %H:%M") for time in times]
    assert slots == [
        f"{day} {hour}" for day in ("Sat", "Sun", "Mon") for hour in ("07:00", "11:00", "15:00", "19:00")
    ]


def test_invoice_export_runs_on_the_master_data_schedule():
    adm = administration_ids()[0]
    start = pendulum.datetime(2026, 10, 24, tz="Europe/Amsterdam")
    export = _run_times(f"king_qics__{adm}__invoice_export", start, 60)
    assert export == _run_times(f"king_qics__{adm}__master_data", start, 60)
