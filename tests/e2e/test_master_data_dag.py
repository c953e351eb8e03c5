"""The master-data DAG run by real Airflow (dag.test) against both sandboxes over real HTTP.

The demo fixture's administration "noord" (King environment 00000, Qics company 1) is the subject.
Debtor 10006 fails by design (its payment condition 9 does not exist in King); debtor 10005 syncs
without its manager and stays pending (employee SDEVRIES is synced by the projects/employees DAG).
"""

from __future__ import annotations

import csv
import json
import logging
from decimal import Decimal
from pathlib import Path

import pytest

from king_qics.hooks.king import KingFinanceHook
from tests.king_records import create_record, delete_record, update_record

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "king_qics__noord__master_data"
COMPANY_ID = 1
EXPECTED_FAILURES = {"10006"}
PENDING = {"10005"}
DEMO = json.loads((ROOT / "sandbox" / "fixtures" / "demo.json").read_text(encoding="utf-8"))
COUNTRY_NAMES = {"NL": "Nederland", "BE": "België"}
# The vendor table's two names that Qics V3 spells differently (documented in the mapping YAMLs).
RENAMES = {
    "VisiAddressAddress1": "VisitAddressAddress1",
    "ManagerResourceCompanyId": "ManagerEmployeeCompanyId",
}
QICS_ENTITY = {
    "VatCode": "VatCode",
    "PaymentCondition": "PaymentCondition",
    "CostCenter": "CostCenter",
    "Item": "ItemCompany",
    "Customer": "CustomerCompany",
}
WRITES = ("POST", "PUT")


def king_table(name: str) -> list[dict]:
    return DEMO["king"]["administrations"][0]["tables"][name]


def qics_records(sandbox, entity: str) -> list[dict]:
    records = sandbox.state("qics")["entities"].get(entity, [])
    return [r for r in records if str(r.get("CompanyId")) == str(COMPANY_ID)]


def by_code(sandbox, entity: str, code_field: str) -> dict[str, dict]:
    return {str(r[code_field]): r for r in qics_records(sandbox, entity)}


def writes(calls: dict) -> dict:
    return {op: n for op, n in calls.items() if op.split(" ")[0] in WRITES and n}


def king_hook() -> KingFinanceHook:
    return KingFinanceHook("king_noord", timeout=5)


def num(value) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value).replace(",", "."))


def j(value) -> bool:
    return str(value).upper() in ("J", "TRUE", "1")


def expected_qics_values(sandbox) -> dict[tuple[str, str], dict[str, object]]:
    """Per (vendor entity, vendor Qics field): King key -> the value the vendor's table prescribes."""
    vat_ids = {code: r["VatCodeId"] for code, r in by_code(sandbox, "VatCode", "Code").items()}
    pc_ids = {
        code: r["PaymentConditionId"] for code, r in by_code(sandbox, "PaymentCondition", "Code").items()
    }
    kpl_ids = {code: r["CostCenterId"] for code, r in by_code(sandbox, "CostCenter", "Code").items()}
    groups = {row["NR"]: row for row in king_table("ARTGRP")}
    expected: dict[tuple[str, str], dict[str, object]] = {}

    def put(entity, field, rows, key, value):
        expected[(entity, field)] = {str(row[key]): value(row) for row in rows}

    btw = king_table("BTW")
    put("VatCode", "Code", btw, "NR", lambda r: str(r["NR"]))
    put("VatCode", "Name", btw, "NR", lambda r: r["OMSCHR"])
    put("VatCode", "Percentage", btw, "NR", lambda r: num(r["PERC"]))
    put(
        "VatCode", "ReverseCharge", btw, "NR", lambda r: r["BTWPL"] == "V" or "verlegd" in r["OMSCHR"].lower()
    )
    bc = king_table("BETCOND")
    put("PaymentCondition", "Code", bc, "NR", lambda r: str(r["NR"]))
    put("PaymentCondition", "Description", bc, "NR", lambda r: r["ZKSL"])
    put("PaymentCondition", "Name", bc, "NR", lambda r: r["ZKSL"])
    put("PaymentCondition", "CompanyId", bc, "NR", lambda r: COMPANY_ID)
    put("PaymentCondition", "PaymentTerm", bc, "NR", lambda r: int(r["VERVDGN"]))
    put("PaymentCondition", "PaymentConditionType", bc, "NR", lambda r: "Days")
    kpl = king_table("KPL")
    put("CostCenter", "Code", kpl, "NR", lambda r: str(r["NR"]))
    put("CostCenter", "Name", kpl, "NR", lambda r: r["OMSCHR"])
    put("CostCenter", "CompanyId", kpl, "NR", lambda r: COMPANY_ID)
    art = king_table("ART")
    hour = lambda r: str(r.get("EENHVERK", "")).lower() == "uur"  # noqa: E731
    put("Item", "ItemCode", art, "NR", lambda r: str(r["NR"]))
    put("Item", "Name", art, "NR", lambda r: r["OMSCHR"])
    put("Item", "CompanyId", art, "NR", lambda r: COMPANY_ID)
    by_letter = {str(b["BTWPL"]): str(b["NR"]) for b in btw}  # ART.BTW is a letter, through BTW.BTWPL
    put("Item", "VatCodeId", art, "NR", lambda r: vat_ids[by_letter[str(r["BTW"])]])
    put("Item", "GLAccountRevenue", art, "NR", lambda r: str(groups[r["ARTGRP"]]["GRBOMZ"]))
    put("Item", "WillBeInvoiced", art, "NR", lambda r: True)
    put("Item", "IsActive", art, "NR", lambda r: not j(r.get("BLOK", "N")))
    put("Item", "ItemType", art, "NR", lambda r: "Hour" if hour(r) else "Expense")
    put("Item", "AllowTimeEntry", art, "NR", lambda r: hour(r))
    deb = [r for r in king_table("DEB") if str(r["NR"]) not in EXPECTED_FAILURES]

    def address(r):
        return " ".join(
            str(p) for p in (r.get("STRAAT"), r.get("HNR"), r.get("HNRTV")) if p not in (None, "")
        )

    put("Customer", "CustomerCode", deb, "NR", lambda r: str(r["NR"]))
    put("Customer", "Name", deb, "NR", lambda r: r["NAAM"])
    put("Customer", "CompanyId", deb, "NR", lambda r: COMPANY_ID)
    put("Customer", "ContactPersonName", deb, "NR", lambda r: r.get("NAAM2") or None)
    put("Customer", "VisitAddressContactPerson", deb, "NR", lambda r: r.get("NAAM2") or None)
    put("Customer", "VisiAddressAddress1", deb, "NR", address)
    put("Customer", "VisitAddressCity", deb, "NR", lambda r: r["PLAATS"])
    put("Customer", "VisitAddressCountryCode", deb, "NR", lambda r: r["LAND"])
    put("Customer", "VisitAddressCountry", deb, "NR", lambda r: COUNTRY_NAMES[r["LAND"]])
    put("Customer", "VisitAddressEmailAddress", deb, "NR", lambda r: r["EMAIL"])
    put("Customer", "SendInvoiceTo", deb, "NR", lambda r: r["EMAIL"])
    put("Customer", "VisitAddressZipCode", deb, "NR", lambda r: r["POSTCD"])
    put("Customer", "VatNumber", deb, "NR", lambda r: r.get("BTWNR") or None)
    put("Customer", "VisitAddressPhoneNumber", deb, "NR", lambda r: r.get("TEL") or None)
    put("Customer", "Identification", deb, "NR", lambda r: r.get("KVKNR") or None)
    put(
        "Customer",
        "InvoiceSpecification",
        deb,
        "NR",
        lambda r: j(r["DECLTOEL"]) if r.get("DECLTOEL") else None,
    )
    put("Customer", "IsActive", deb, "NR", lambda r: not j(r["BLOK"]))
    put("Customer", "InvoiceAddressSameAsVisitAddress", deb, "NR", lambda r: True)
    put("Customer", "PaymentConditionId", deb, "NR", lambda r: pc_ids[str(r["BETCOND"])])
    customer_vat = {"I": "3"}  # defaults.customer_vat_codes of noord: DEB has no VAT-code field
    put("Customer", "VatCodeId", deb, "NR", lambda r: vat_ids.get(customer_vat.get(r.get("BTWPL"), "")))
    put("Customer", "CostCenterId", deb, "NR", lambda r: kpl_ids[str(r["KPL"])])
    # No employee is synced yet (projects/employees DAG): 10005's manager link waits, never guessed.
    put("Customer", "ManagerResourceCompanyId", deb, "NR", lambda r: None)
    return expected


def comparable(value):
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value)).normalize()
    try:
        return Decimal(value).normalize() if str(value).lstrip("-").replace(".", "", 1).isdigit() else value
    except ArithmeticError:
        return value


@pytest.fixture
def first_run(run_dag, sandbox):
    dag_run, states = run_dag(DAG_ID)
    return dag_run, states


def test_first_run_loads_every_mapped_field_exactly(first_run, sandbox):
    _, states = first_run
    assert states == {
        "check_king": "success",  # the gate: the first run reads everything (king_qics.sync.gate)
        "vat_codes": "success",
        "payment_conditions": "success",
        "cost_centers": "success",
        "items": "success",
        "customers": "failed",  # 10006, by design
        "reconcile": "success",  # the first run of the day also reconciles (tests/e2e/test_reconcile.py)
    }
    expected = expected_qics_values(sandbox)
    with open(
        ROOT / "plugins" / "king_qics" / "mapping" / "data" / "vendor_field_table.csv", encoding="utf-8"
    ) as handle:
        vendor_rows = {
            (row["qics_entity"], row["qics_field"])
            for row in csv.DictReader(line for line in handle if line[0] != "#")
        }
    assert set(expected) == vendor_rows, "every row of the vendor's table is checked, and nothing else"

    code_field = {"VatCode": "Code", "PaymentCondition": "Code", "CostCenter": "Code", "Item": "ItemCode"}
    code_field["Customer"] = "CustomerCode"
    for (vendor_entity, vendor_field), values in sorted(expected.items()):
        records = by_code(sandbox, QICS_ENTITY[vendor_entity], code_field[vendor_entity])
        field = RENAMES.get(vendor_field, vendor_field)
        for key, value in values.items():
            assert key in records, f"{vendor_entity} {key} is not in Qics"
            actual = records[key].get(field)
            assert comparable(actual) == comparable(value), (
                f"{vendor_entity} {key} {field}: {actual!r} != {value!r}"
            )
    customers = by_code(sandbox, "CustomerCompany", "CustomerCode")
    assert not EXPECTED_FAILURES & set(customers)


def test_existing_qics_records_are_matched_by_code_not_duplicated(first_run, sandbox):
    for entity, code in (
        ("CustomerCompany", "CustomerCode"),
        ("VatCode", "Code"),
        ("ItemCompany", "ItemCode"),
    ):
        codes = [str(r[code]) for r in qics_records(sandbox, entity)]
        assert len(codes) == len(set(codes)), entity


def test_second_run_makes_zero_qics_writes(first_run, run_dag, sandbox):
    sandbox.reset_calls()
    _, states = run_dag(DAG_ID)
    assert states["customers"] == "failed" and all(
        s == "success" for t, s in states.items() if t not in ("customers", "reconcile")
    )
    assert states["reconcile"] == "skipped"  # reconciled by the first run of the day already
    calls = sandbox.calls("qics")
    assert writes(calls) == {}
    assert not [op for op in calls if op.startswith("GET") and "Invoice" not in op], (
        calls
    )  # no Qics reads either


def test_one_changed_debtor_field_gives_exactly_one_put(first_run, run_dag, sandbox):
    with king_hook() as king:
        update_record(king, "DEB", "NR", 10002, {"EMAIL": "nieuw@energiebos.nl"})
    sandbox.reset_calls()
    run_dag(DAG_ID)
    assert writes(sandbox.calls("qics")) == {"PUT CustomerCompany": 1}
    customer = by_code(sandbox, "CustomerCompany", "CustomerCode")["10002"]
    assert customer["VisitAddressEmailAddress"] == customer["SendInvoiceTo"] == "nieuw@energiebos.nl"


def test_unmapped_king_change_writes_nothing(first_run, run_dag, sandbox):
    with king_hook() as king:
        update_record(king, "DEB", "NR", 10002, {"MOBIEL": "0612345678"})  # not a mapped field
    sandbox.reset_calls()
    run_dag(DAG_ID)
    assert writes(sandbox.calls("qics")) == {}


def test_debtor_deleted_in_king_stays_in_qics(first_run, run_dag, sandbox):
    with king_hook() as king:
        delete_record(king, "DEB", "NR", 10011)
    sandbox.reset_calls()
    run_dag(DAG_ID, full_refresh=True)
    assert "10011" in by_code(sandbox, "CustomerCompany", "CustomerCode")
    assert writes(sandbox.calls("qics")) == {}


def test_failures_are_isolated_and_retried_by_the_next_run(run_dag, sandbox, state_store):
    fixture = json.loads(json.dumps(DEMO))
    fixture["_base_dir"] = str(ROOT / "sandbox" / "fixtures")
    debtors = fixture["king"]["administrations"][0]["tables"]["DEB"]
    too_long = next(d for d in debtors if d["NR"] == 10008)
    too_long["NAAM"] = "Zorggroep Bakker Thuiszorg en Wijkverpleging Noord-Holland B.V."  # > 50: Qics says no
    sandbox.load(fixture)

    _, states = run_dag(DAG_ID)
    assert states["customers"] == "failed"
    customers = by_code(sandbox, "CustomerCompany", "CustomerCode")
    synced = {str(d["NR"]) for d in debtors} - EXPECTED_FAILURES - {"10008"}
    assert synced <= set(customers) and not ({"10006", "10008"} & set(customers))
    from king_qics.state import SyncedRecords

    failing = SyncedRecords(state_store, "noord", "customers").failing()
    assert set(failing) == EXPECTED_FAILURES | {"10008"}
    assert set(SyncedRecords(state_store, "noord", "customers").pending()) == PENDING
    assert "BETCOND 9" in failing["10006"] and "Name" in failing["10008"]

    # Payment condition 9 appears in King; debtor 10006 itself does not change, yet it syncs.
    with king_hook() as king:
        create_record(king, "BETCOND", {"NR": 9, "ZKSL": "60 dagen netto", "VERVDGN": 60})
    sandbox.reset_calls()
    run_dag(DAG_ID)
    customers = by_code(sandbox, "CustomerCompany", "CustomerCode")
    assert "10006" in customers
    condition = by_code(sandbox, "PaymentCondition", "Code")["9"]
    assert customers["10006"]["PaymentConditionId"] == condition["PaymentConditionId"]
    assert set(SyncedRecords(state_store, "noord", "customers").failing()) == {"10008"}
    # 10006 is created; 10008, which Qics refused for its own data, is not offered again unchanged
    assert writes(sandbox.calls("qics")) == {"POST PaymentCondition": 1, "POST CustomerCompany": 1}


def test_a_record_qics_rejected_is_sent_again_only_when_it_changed(run_dag, sandbox, state_store):
    fixture = json.loads(json.dumps(DEMO))
    fixture["_base_dir"] = str(ROOT / "sandbox" / "fixtures")
    debtors = fixture["king"]["administrations"][0]["tables"]["DEB"]
    next(d for d in debtors if d["NR"] == 10008)["NAAM"] = (
        "Zorggroep Bakker Thuiszorg en Wijkverpleging N-H B.V."
    )
    sandbox.load(fixture)
    run_dag(DAG_ID)
    sandbox.reset_calls()
    dag_run, states = run_dag(DAG_ID)
    assert writes(sandbox.calls("qics")) == {}  # nothing changed: nothing is sent
    assert states["customers"] == "failed"  # it is still not in Qics, and the run says so
    counts = dag_run.get_task_instance("customers").xcom_pull(task_ids="customers", key="counts")
    assert counts["failed"] == 2
    sandbox.reset_calls()
    run_dag(DAG_ID, full_refresh=True)  # full_refresh sends it again
    assert writes(sandbox.calls("qics")) == {"POST CustomerCompany": 1}
    with king_hook() as king:
        update_record(king, "DEB", "NR", 10008, {"NAAM": "Zorggroep Bakker B.V."})
    sandbox.reset_calls()
    run_dag(DAG_ID)
    assert writes(sandbox.calls("qics")) == {"POST CustomerCompany": 1}
    assert "10008" in by_code(sandbox, "CustomerCompany", "CustomerCode")


def test_a_record_king_cannot_serve_fails_alone_and_the_rest_is_synced(run_dag, sandbox, state_store):
    fixture = json.loads(json.dumps(DEMO))
    fixture["_base_dir"] = str(ROOT / "sandbox" / "fixtures")
    debtors = fixture["king"]["administrations"][0]["tables"]["DEB"]
    next(d for d in debtors if d["NR"] == 10003)["NAAM"] = (
        "Woningcorporatie \u0001 Van den Berg"  # King: HTTP 500
    )
    sandbox.load(fixture)
    _, states = run_dag(DAG_ID)
    assert states["customers"] == "failed"
    customers = by_code(sandbox, "CustomerCompany", "CustomerCode")
    assert {str(d["NR"]) for d in debtors} - set(customers) == EXPECTED_FAILURES  # 10003 was in Qics already
    assert "\u0001" not in customers["10003"]["Name"]
    from king_qics.state import SyncedRecords

    failing = SyncedRecords(state_store, "noord", "customers").failing()
    assert set(failing) == EXPECTED_FAILURES | {"10003"}
    assert failing["10003"].startswith("King cannot return this record")


def test_full_refresh_recreates_a_record_deleted_by_hand_in_qics(first_run, run_dag, sandbox, state_store):
    from king_qics.state import SyncedRecords, reconciliation_differences

    gone = by_code(sandbox, "CustomerCompany", "CustomerCode")["10007"]["CustomerCompanyId"]
    sandbox.admin("qics", "DELETE", f"entities/CustomerCompany/{gone}")
    sandbox.reset_calls()
    run_dag(DAG_ID, reconcile=True, dry_run=True)
    with state_store.engine.connect() as conn:
        rows = conn.execute(reconciliation_differences.select()).all()
    assert ("customers", "10007", "missing") in {(r.entity, r.king_key, r.kind) for r in rows}
    run_dag(DAG_ID, full_refresh=True)
    assert writes(sandbox.calls("qics")) == {"POST CustomerCompany": 1}
    again = by_code(sandbox, "CustomerCompany", "CustomerCode")["10007"]
    assert SyncedRecords(state_store, "noord", "customers").qics_ids()["10007"] == int(
        again["CustomerCompanyId"]
    )


def test_dry_run_writes_nothing_and_leaves_the_next_runs_work(first_run, run_dag, sandbox, state_store):
    from king_qics.state import SyncedRecords, Watermarks

    records = SyncedRecords(state_store, "noord", "customers")
    before = (records.all(), Watermarks(state_store, "noord").get("DEB"), records.failing())
    with king_hook() as king:
        update_record(king, "DEB", "NR", 10002, {"PLAATS": "Amersfoort"})
    sandbox.reset_calls()
    _, states = run_dag(DAG_ID, dry_run=True)
    assert writes(sandbox.calls("qics")) == {}
    after = (records.all(), Watermarks(state_store, "noord").get("DEB"), records.failing())
    assert after == before

    sandbox.reset_calls()
    run_dag(DAG_ID)
    assert writes(sandbox.calls("qics")) == {"PUT CustomerCompany": 1}
    assert by_code(sandbox, "CustomerCompany", "CustomerCode")["10002"]["VisitAddressCity"] == "Amersfoort"


def test_full_refresh_repairs_a_record_changed_by_hand_in_qics(first_run, run_dag, sandbox, state_store):
    customer = by_code(sandbox, "CustomerCompany", "CustomerCode")["10007"]
    key = customer["CustomerCompanyId"]
    from king_qics.hooks.qics import QicsMilestonesHook

    qics = QicsMilestonesHook("qics_sandbox", token_store=state_store.tokens)
    qics.update("CustomerCompany", key, {**customer, "Name": "Handmatig gewijzigd"})
    qics.close()

    sandbox.reset_calls()
    run_dag(DAG_ID)  # the hash did not change: an ordinary run does not notice
    assert by_code(sandbox, "CustomerCompany", "CustomerCode")["10007"]["Name"] == "Handmatig gewijzigd"
    assert writes(sandbox.calls("qics")) == {}

    sandbox.reset_calls()
    run_dag(DAG_ID, full_refresh=True)
    assert (
        by_code(sandbox, "CustomerCompany", "CustomerCode")["10007"]["Name"] == "Ingenieursbureau Jansen N.V."
    )
    assert writes(sandbox.calls("qics")) == {"PUT CustomerCompany": 1}


def test_a_failing_debtor_deleted_in_king_leaves_the_failing_list(first_run, run_dag, sandbox, state_store):
    from king_qics.state import SyncedRecords

    assert set(SyncedRecords(state_store, "noord", "customers").failing()) == EXPECTED_FAILURES
    with king_hook() as king:
        delete_record(king, "DEB", "NR", 10006)
    _, states = run_dag(DAG_ID)
    assert states["customers"] == "success"
    assert SyncedRecords(state_store, "noord", "customers").failing() == {}


def test_a_debtor_with_several_email_addresses_is_synced_with_the_first(run_dag, sandbox, caplog):
    """King's EMAIL often holds several addresses ("a; b"): the debtor is synced with the first as
    visit-address e-mail and invoice recipient, and the task log warns that the other is not."""
    fixture = json.loads(json.dumps(DEMO))
    fixture["_base_dir"] = str(ROOT / "sandbox" / "fixtures")
    debtor = next(r for r in fixture["king"]["administrations"][0]["tables"]["DEB"] if r["NR"] == 10002)
    debtor["EMAIL"] = "facturen@energiebos.nl; Administratie@energiebos.nl"
    sandbox.load(fixture)
    caplog.set_level(logging.INFO, logger="king_qics")
    _, states = run_dag(DAG_ID)
    assert states["customers"] == "failed"  # 10006 only, by design
    customer = by_code(sandbox, "CustomerCompany", "CustomerCode")["10002"]
    assert customer["VisitAddressEmailAddress"] == customer["SendInvoiceTo"] == "facturen@energiebos.nl"
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("king_qics.mapping") and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 2  # the customers task, and the reconciliation (it maps King the same way)
    assert set(warnings) == {
        "customers 10002: VisitAddressEmailAddress, SendInvoiceTo: 2 e-mail addresses"
        " (facturen@energiebos.nl; Administratie@energiebos.nl): only the first, facturen@energiebos.nl,"
        " is synced (Qics takes one address per field)"
    }
