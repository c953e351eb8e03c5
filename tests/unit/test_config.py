"""include/administrations.yaml: the model, defaults, and one clear error per broken entry."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import yaml

from king_qics.config import Administration, load_administrations, parse_administrations

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "include" / "administrations.yaml"

MINIMAL = {
    "id": "oost",
    "name": "Oost B.V.",
    "king_conn_id": "king_oost",
    "qics_conn_id": "qics_oost",
    "qics_company_id": 3,
    "sales_journal": 70,
    "book_invoices_from": "2026-10-01",
}


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "administrations.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_shipped_file_has_the_two_demo_administrations():
    from sandbox.universe import ADMINISTRATIONS

    result = load_administrations(CONFIG)
    assert result.errors == []
    assert [adm.id for adm in result.administrations] == ["noord", "zuid"]
    for adm, demo in zip(result.administrations, ADMINISTRATIONS, strict=True):
        assert adm.id == demo["id"] and adm.name == demo["name"]
        assert adm.qics_company_id == demo["qics_company_id"]
        assert adm.sales_journal == demo["sales_journal"]
        assert adm.book_invoices_from == date(2026, 10, 1)
        assert adm.king_conn_id == f"king_{adm.id}" and adm.qics_conn_id == "qics_sandbox"
        assert adm.enabled


def test_defaults():
    adm = Administration.model_validate(MINIMAL)
    assert adm.missing_pdf == "wait"
    assert adm.projects_table == "KDR"
    assert adm.projects_employees_interval_minutes == 240
    assert (adm.schedule.start, adm.schedule.end, adm.schedule.interval_minutes) == ("07:00", "20:00", 15)
    assert (adm.pools.king, adm.pools.qics) == (1, 1)
    assert adm.qics_write_concurrency == 4
    assert adm.defaults.country_code == "NL"
    assert adm.defaults.payment_condition_type == "Days"
    assert adm.defaults.item_type == "Expense"
    assert adm.defaults.will_be_invoiced is True and adm.defaults.allow_time_entry is False
    assert adm.enabled is True
    assert adm.company_id == 3
    assert adm.book_invoices_from == date(2026, 10, 1)


@pytest.mark.parametrize("value", [0, 33, "many"])
def test_qics_write_concurrency_out_of_range_is_an_error_of_that_field(value):
    result = parse_administrations({"administrations": [{**MINIMAL, "qics_write_concurrency": value}]})
    assert result.administrations == []
    assert [error.fields for error in result.errors] == [("qics_write_concurrency",)]


def test_valid_file_sorted_by_id_with_top_level_settings(tmp_path):
    data = {
        "state_store_conn_id": "king_qics_state",
        "administrations": [
            {**MINIMAL, "id": "west", "king_conn_id": "king_west", "qics_company_id": 4},
            MINIMAL,
        ],
    }
    result = load_administrations(write(tmp_path, data))
    assert result.errors == []
    assert [adm.id for adm in result.administrations] == ["oost", "west"]
    assert result.state_store_conn_id == "king_qics_state"
    assert result.get("west").qics_company_id == 4 and result.get("nope") is None


def test_broken_entry_is_one_error_naming_administration_and_field_others_load(tmp_path):
    data = {"administrations": [{**MINIMAL, "id": "kapot", "qics_company_id": "not-a-number"}, MINIMAL]}
    result = load_administrations(write(tmp_path, data))
    assert [adm.id for adm in result.administrations] == ["oost"]
    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.administration == "kapot" and error.fields == ("qics_company_id",)
    message = str(error)
    assert "'kapot'" in message and "qics_company_id" in message and "not-a-number" in message


def test_several_problems_of_one_entry_are_still_one_error(tmp_path):
    broken = {**MINIMAL, "sales_journal": "x", "missing_pdf": "maybe"}
    del broken["king_conn_id"]
    result = load_administrations(write(tmp_path, {"administrations": [broken]}))
    assert len(result.errors) == 1
    message = str(result.errors[0])
    for field in ("sales_journal", "missing_pdf", "king_conn_id"):
        assert field in message
    assert "required, missing" in message


def test_unknown_key_is_an_error_typos_are_not_ignored(tmp_path):
    data = {
        "administrations": [
            {**MINIMAL, "sales_jurnal": 70},
            {**MINIMAL, "id": "b", "defaults": {"itemtype": "X"}},
        ]
    }
    result = load_administrations(write(tmp_path, data))
    assert result.administrations == []
    first, second = (str(error) for error in result.errors)
    assert "'oost'" in first and "sales_jurnal: unknown key" in first
    assert "'b'" in second and "defaults.itemtype: unknown key" in second


def test_duplicate_id_is_an_error_of_the_duplicate(tmp_path):
    data = {"administrations": [MINIMAL, {**MINIMAL, "qics_company_id": 9}]}
    result = load_administrations(write(tmp_path, data))
    assert [(adm.id, adm.qics_company_id) for adm in result.administrations] == [("oost", 3)]
    assert len(result.errors) == 1
    assert result.errors[0].position == 2 and "duplicate id 'oost'" in str(result.errors[0])


def test_entry_without_a_usable_id_is_named_by_position(tmp_path):
    data = {"administrations": [{**MINIMAL, "id": "Bad Id!"}, "just text"]}
    result = load_administrations(write(tmp_path, data))
    assert len(result.errors) == 2
    assert "'Bad Id!' (entry 1)" in str(result.errors[0]) and "id:" in str(result.errors[0])
    assert "entry 2" in str(result.errors[1])


def test_schedule_and_pools_are_validated():
    result = parse_administrations(
        {
            "administrations": [
                {**MINIMAL, "schedule": {"start": "7:00"}},
                {**MINIMAL, "id": "b", "schedule": {"start": "21:00"}},
                {**MINIMAL, "id": "c", "pools": {"king": 0}},
                {
                    **MINIMAL,
                    "id": "d",
                    "schedule": {"start": "06:30", "end": "22:00", "interval_minutes": 30},
                },
            ]
        }
    )
    assert [adm.id for adm in result.administrations] == ["d"]
    assert [error.fields for error in result.errors] == [("schedule.start",), ("schedule",), ("pools.king",)]


def test_broken_file_and_missing_file_are_errors_not_exceptions(tmp_path):
    assert "not valid YAML" in str(load_administrations(write(tmp_path, "administrations: [\n")).errors[0])
    assert "cannot read" in str(load_administrations(tmp_path / "nope.yaml").errors[0])
    result = load_administrations(write(tmp_path, {"administrations": [], "colour": "blue"}))
    assert "colour: unknown key" in str(result.errors[0]) and result.errors[0].administration is None
    assert load_administrations(write(tmp_path, "")).administrations == []


def test_config_module_is_import_light():
    heavy = "('pandas', 'numpy', 'requests', 'sqlalchemy')"
    code = f"import sys; import king_qics.config; print(','.join(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "plugins")},
    )
    assert out.stdout.strip() == ""


def _entry(**changes) -> dict:
    return {**MINIMAL, **changes}


def test_two_entries_for_the_same_qics_company_are_refused_naming_both_and_others_load():
    result = parse_administrations(
        {
            "administrations": [
                _entry(id="oost", king_conn_id="king_oost"),
                _entry(id="west", name="West", king_conn_id="king_west", qics_company_id=4),
                _entry(id="oost2", name="Oost again", king_conn_id="king_oost2"),  # same Qics company 3
            ]
        }
    )
    assert [adm.id for adm in result.administrations] == ["west"]
    (error,) = result.errors
    assert "'oost' (entry 1) and 'oost2' (entry 3)" in str(error) and "booked twice" in str(error)
    assert "Qics company 3 of connection 'qics_oost'" in str(error)


def test_entries_sharing_both_books_get_one_error():
    result = parse_administrations({"administrations": [_entry(id="oost"), _entry(id="oost2", name="2")]})
    (error,) = result.errors
    assert "King administration of connection 'king_oost'" in str(error) and "Qics company 3" in str(error)


def test_two_entries_for_the_same_king_administration_are_refused():
    result = parse_administrations(
        {
            "administrations": [
                _entry(id="oost", king_conn_id="king_oost"),
                _entry(id="oost_b", name="B", king_conn_id="king_oost", qics_company_id=9),
            ]
        }
    )
    assert result.administrations == []
    (error,) = result.errors
    assert "'oost' (entry 1) and 'oost_b' (entry 2)" in str(error) and "king_oost" in str(error)
    assert error.fields == ("king_conn_id",)
