"""The mapping engine and its YAML files (mapping/data/*.yaml): the vendor's field table reproduced exactly,
every transform and rule, lookups, per-record errors, JSON-ready values, hashing and volume."""

from __future__ import annotations

import csv
import json
import logging
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from king_qics.catalog import ENTITY_NAMES as ENTITIES
from king_qics.config import Administration
from king_qics.mapping import (
    MappingError,
    load_all,
    load_mapping,
    record_hash,
)
from sandbox import universe

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "plugins" / "king_qics" / "mapping" / "data"
VENDOR_TABLE = MAPPINGS / "vendor_field_table.csv"
RENAMES = {
    "VisiAddressAddress1": "VisitAddressAddress1",
    "ManagerResourceCompanyId": "ManagerEmployeeCompanyId",
}

ADM = Administration.model_validate(
    {
        "id": "noord",
        "name": "Noord",
        "king_conn_id": "king_noord",
        "qics_conn_id": "qics_noord",
        "qics_company_id": 1,
        "sales_journal": 70,
        "book_invoices_from": "2026-10-01",
        "defaults": {"gl_account_revenue": "8999"},
    }
)


def vendor_rows() -> list[dict]:
    lines = [
        line for line in VENDOR_TABLE.read_text(encoding="utf-8").splitlines() if not line.startswith("#")
    ]
    return list(csv.DictReader(lines))


def debtors(**overrides) -> pd.DataFrame:
    row = {
        "NR": 10000,
        "NAAM": "Bakkerij De Korenbloem B.V.",
        "NAAM2": "Jan Jansen",
        "STRAAT": "Hoofdstraat",
        "HNR": 12,
        "HNRTV": "A",
        "ADRES": "Hoofdstraat 12a",
        "POSTCD": "1234 AB",
        "PLAATS": "Utrecht",
        "LAND": "NL",
        "EMAIL": "info@korenbloem.nl",
        "TEL": "030-1234567",
        "BTWNR": "NL001234567B01",
        "KVKNR": "12345678",
        "BETCOND": 2,
        "BTWPL": "B",
        "KPL": 100,
        "BLOK": False,
        "DECLTOEL": True,
        "MEDEWDEC": "JJANSEN",
    }
    row.update(overrides)
    return pd.DataFrame([row])


LOOKUPS = {
    "vat_codes": {"0": 10, "1": 11, "2": 12, "3": 13},
    "payment_conditions": {"1": 21, "2": 22, "3": 23},
    "cost_centers": {"100": 31, "200": 32, "300": 33},
    "employees": {"JJANSEN": 41, "PBAKKER": 42},
    "customers": {"10000": 51},
}


def one(entity: str, frame: pd.DataFrame, **kwargs) -> dict:
    result = load_mapping(entity).apply(frame, administration=ADM, lookups=LOOKUPS, **kwargs)
    assert result.errors == {}
    assert len(result.records) == 1
    return result.records.iloc[0].to_dict()


# -- the YAML files ---------------------------------------------------------------------------


def test_every_mapping_loads_and_is_consistent():
    mappings = load_all()
    assert set(mappings) == set(ENTITIES) == {path.stem for path in MAPPINGS.glob("*.yaml")} - {"countries"}
    for name, mapping in mappings.items():
        assert mapping.entity == name
        assert mapping.king_fields[0] == mapping.king_key
        assert "CompanyId" in mapping.fields and "CompanyId" in mapping.qics_natural_key
        assert mapping.qics_key in mapping.qics_natural_key
        for field, spec in mapping.fields.items():
            assert spec.vendor, (name, field)


def test_vendor_field_table_is_a_verbatim_copy_of_the_shared_one():
    shared = Path("/work/shared/field_mapping.csv")
    if not shared.exists():
        pytest.skip("the shared vendor table is not on this machine")
    ours = [line for line in VENDOR_TABLE.read_text().splitlines() if not line.startswith("#")]
    assert ours == shared.read_text().splitlines()


def test_mappings_reproduce_the_vendor_field_table_exactly():
    mappings = load_all()
    by_vendor_entity = {m.vendor_entity: m for m in mappings.values() if m.vendor_entity}
    rows = vendor_rows()
    assert len(rows) == 44
    covered = set()
    for row in rows:
        mapping = by_vendor_entity[row["qics_entity"]]
        assert mapping.vendor_table == row["king_table"], row
        qics_field = RENAMES.get(row["qics_field"], row["qics_field"])
        assert qics_field in mapping.fields, row
        spec = mapping.fields[qics_field]
        if qics_field != row["qics_field"]:
            assert spec.vendor_name == row["qics_field"] and spec.why, row
        else:
            assert spec.vendor_name is None, row
        if row["king_field"]:
            assert spec.vendor == row["king_field"], row
            assert spec.direct_king_fields() == [row["king_field"]], row
        else:
            assert spec.vendor.startswith("empty in vendor table"), row
            assert spec.why, row
        covered.add((mapping.entity, qics_field))
    # and nothing the vendor table lacks claims to come from it
    for mapping in by_vendor_entity.values():
        for field, spec in mapping.fields.items():
            if (mapping.entity, field) not in covered:
                assert spec.vendor.startswith("not in vendor table"), (mapping.entity, field)
    # the two entities without a vendor table say so everywhere
    for name in ("employees", "projects"):
        assert all(spec.vendor.startswith("not in vendor table") for spec in mappings[name].fields.values())


def test_documented_renames_and_vendor_typo():
    customers = load_mapping("customers")
    assert "VisiAddressAddress1" not in customers.fields
    assert customers.fields["VisitAddressAddress1"].vendor_name == "VisiAddressAddress1"
    assert "typo" in customers.fields["VisitAddressAddress1"].why
    assert customers.fields["ManagerEmployeeCompanyId"].vendor_name == "ManagerResourceCompanyId"
    assert customers.fields["ManagerEmployeeCompanyId"].lookup.entity == "employees"


def test_what_the_caller_needs():
    items, customers, projects = load_mapping("items"), load_mapping("customers"), load_mapping("projects")
    assert (
        items.king_table == "ART"
        and items.qics_entity == "ItemCompany"
        and items.qics_id_field == "ItemCompanyId"
    )
    assert items.lookups == ["vat_codes"]
    assert items.extra_tables == {"ARTGRP": ["NR", "GRBOMZ"], "BTW": ["NR", "BTWPL"]}
    assert set(customers.lookups) == {"vat_codes", "payment_conditions", "cost_centers", "employees"}
    assert customers.natural_key({"CustomerCode": "10000", "CompanyId": 1, "Name": "x"}) == {
        "CustomerCode": "10000",
        "CompanyId": 1,
    }
    assert customers.king_key_of({"CustomerCode": "10000"}) == "10000"
    assert customers.king_key_of({"CustomerCode": None}) is None
    assert customers.company_filter(ADM) == "CompanyId eq 1"
    assert projects.king_table_for(ADM) == "KDR"
    assert projects.king_table_for(ADM.model_copy(update={"projects_table": "DOSSIER"})) == "DOSSIER"
    assert customers.king_table_for(ADM) == "DEB"


# -- invalid YAML -----------------------------------------------------------------------------


def _write_mapping(tmp_path: Path, fields: dict, entity: str = "cost_centers") -> Path:
    data = yaml.safe_load((MAPPINGS / f"{entity}.yaml").read_text())
    data["fields"].update(fields)
    (tmp_path / f"{entity}.yaml").write_text(yaml.safe_dump(data))
    return tmp_path


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"source": "X", "transform": "shout", "vendor": "X"}, "unknown transform 'shout'"),
        ({"source": "X", "constant": 1, "vendor": "X"}, "exactly one of"),
        ({"rule": "magic", "vendor": "not in vendor table: x", "why": "x"}, "unknown rule 'magic'"),
        ({"source": "X", "vendor": "Y"}, "not read from it"),
        ({"constant": 1, "vendor": "not in vendor table: x"}, "needs a 'why'"),
        ({"source": "X", "transform": "truncate", "vendor": "X"}, "truncate:N"),
        ({"source": ["A", "B"], "vendor": "not in vendor table: x", "why": "x"}, "needs transform 'join'"),
        ({"source": "X", "vendor": "X", "colour": "red"}, "Extra inputs"),
    ],
)
def test_invalid_mapping_is_a_clear_error(tmp_path, field, message):
    with pytest.raises(MappingError, match="cost_centers.yaml") as caught:
        load_mapping("cost_centers", _write_mapping(tmp_path, {"Extra": field}))
    assert message in str(caught.value)


def test_adding_a_field_is_a_yaml_change_only(tmp_path):
    directory = _write_mapping(
        tmp_path,
        {
            "ShortName": {
                "source": "ZKSL",
                "transform": ["strip", "upper", "truncate:3"],
                "vendor": "not in vendor table: x",
                "why": "x",
            }
        },
    )
    mapping = load_mapping("cost_centers", directory)
    assert "ZKSL" in mapping.king_fields
    frame = pd.DataFrame({"NR": [100], "OMSCHR": ["Advies"], "ZKSL": [" advies "]})
    record = mapping.apply(frame, administration=ADM, lookups={}).records.iloc[0]
    assert record["ShortName"] == "ADV"


# -- each entity, end to end ------------------------------------------------------------------


def test_vat_codes_from_the_universe():
    frame = pd.DataFrame(
        [
            {"NR": nr, "OMSCHR": name, "PERC": perc, "BTWPL": kind}
            for nr, name, perc, kind, _ in universe.VAT_CODES
        ]
    )
    result = load_mapping("vat_codes").apply(frame, administration=ADM, lookups={})
    assert result.errors == {}
    records = result.records
    assert list(records.index) == ["0", "1", "2", "3"]
    assert records.loc["1"].to_dict() == {
        "Code": "1",
        "Name": "Btw hoog 21%",
        "Percentage": Decimal("21"),
        "ReverseCharge": False,
        "CompanyId": 1,
        "IsDefault": False,
    }
    assert records["ReverseCharge"].tolist() == [False, False, False, True]


def test_reverse_charge_from_kind_or_description():
    frame = pd.DataFrame(
        {
            "NR": [1, 2, 3, 4],
            "OMSCHR": ["Hoog", "BTW VERLEGD eu", "Laag", "x"],
            "PERC": [21, 0, 9.0, "0"],
            "BTWPL": ["B", "N", "v", None],
        }
    )
    records = load_mapping("vat_codes").apply(frame, administration=ADM, lookups={}).records
    assert records["ReverseCharge"].tolist() == [False, True, True, False]
    assert records["Percentage"].tolist() == [Decimal("21"), Decimal("0"), Decimal("9.0"), Decimal("0")]


def test_payment_conditions():
    frame = pd.DataFrame(
        [{"NR": nr, "ZKSL": name, "VERVDGN": days} for nr, name, days in universe.PAYMENT_CONDITIONS]
    )
    records = load_mapping("payment_conditions").apply(frame, administration=ADM, lookups={}).records
    assert records.loc["2"].to_dict() == {
        "Code": "2",
        "Description": "30 dagen netto",
        "Name": "30 dagen netto",
        "CompanyId": 1,
        "PaymentTerm": 30,
        "PaymentConditionType": "Days",
    }


def test_cost_centers():
    frame = pd.DataFrame([{"NR": nr, "OMSCHR": name} for nr, name in universe.COST_CENTERS])
    records = load_mapping("cost_centers").apply(frame, administration=ADM, lookups={}).records
    assert records.loc["300"].to_dict() == {
        "Code": "300",
        "Name": "Overhead",
        "CompanyId": 1,
        "IsActive": True,
    }


def vat_table() -> pd.DataFrame:
    return pd.DataFrame([{"NR": nr, "BTWPL": kind} for nr, _name, _perc, kind, _gl in universe.VAT_CODES])


def test_items_from_the_universe_with_article_group_join_and_defaults():
    letter = {nr: kind for nr, _name, _perc, kind, _gl in universe.VAT_CODES}
    frame = pd.DataFrame(
        [
            {"NR": nr, "OMSCHR": name, "ARTGRP": grp, "BTW": letter[vat], "EENHVERK": unit, "BLOK": False}
            for nr, name, grp, vat, unit in universe.ITEMS
        ]
        + [{"NR": "OUD", "OMSCHR": "Oud", "ARTGRP": None, "BTW": None, "EENHVERK": "Uur ", "BLOK": "J"}]
    )
    groups = pd.DataFrame([{"NR": nr, "OMSCHR": name, "GRBOMZ": gl} for nr, name, gl in universe.ITEM_GROUPS])
    result = load_mapping("items").apply(
        frame, administration=ADM, lookups=LOOKUPS, extra_tables={"ARTGRP": groups, "BTW": vat_table()}
    )
    assert result.errors == {}
    records = result.records
    assert records.loc["ADV"].to_dict() == {
        "VatCodeId": 11,  # ART.BTW "B" -> the BTW row with BTWPL "B" -> NR 1 -> its Qics id
        "GLAccountRevenue": "8000",
        "WillBeInvoiced": True,
        "IsActive": True,
        "ItemCode": "ADV",
        "ItemType": "Hour",
        "CompanyId": 1,
        "Name": "Adviesuur",
        "AllowTimeEntry": True,
        "AllowPriceModifications": True,
    }
    assert records.loc["REIS", "ItemType"] == "Expense" and records.loc["REIS", "AllowTimeEntry"] is False
    assert records.loc["BOEK", "VatCodeId"] == 12 and records.loc["BOEK", "GLAccountRevenue"] == "8020"
    oud = records.loc["OUD"]
    assert oud["GLAccountRevenue"] == "8999"  # no group: defaults.gl_account_revenue
    assert oud["VatCodeId"] is None and oud["IsActive"] is False and oud["ItemType"] == "Hour"


def test_an_article_vat_letter_that_no_or_several_btw_rows_hold_fails_the_article():
    frame = pd.DataFrame(
        [
            {"NR": "A", "OMSCHR": "a", "BTW": "X", "BLOK": False},
            {"NR": "B", "OMSCHR": "b", "BTW": "H", "BLOK": False},
        ]
    )
    doubled = pd.concat([vat_table(), pd.DataFrame([{"NR": 7, "BTWPL": "H"}, {"NR": 8, "BTWPL": "H"}])])
    groups = pd.DataFrame(columns=["NR", "GRBOMZ"])
    result = load_mapping("items").apply(
        frame, administration=ADM, lookups=LOOKUPS, extra_tables={"ARTGRP": groups, "BTW": doubled}
    )
    assert "King BTW 'X' matches no BTW row (BTWPL 'X')" in result.errors["A"]
    assert "King BTW 'H' matches 2 BTW rows (BTWPL)" in result.errors["B"]
    assert "name its BTW.NR in defaults.item_vat_codes" in result.errors["B"]


def test_a_letter_the_btw_table_does_not_tell_apart_is_named_in_the_config():
    frame = pd.DataFrame(
        [
            {"NR": "A", "OMSCHR": "a", "BTW": "H", "BLOK": False},
            {"NR": "B", "OMSCHR": "b", "BTW": "L", "BLOK": False},  # not listed: through the BTW table
        ]
    )
    doubled = pd.concat([vat_table(), pd.DataFrame([{"NR": 1, "BTWPL": "H"}, {"NR": 8, "BTWPL": "H"}])])
    adm = ADM.model_copy(update={"defaults": ADM.defaults.model_copy(update={"item_vat_codes": {"H": 1}})})
    result = load_mapping("items").apply(
        frame,
        administration=adm,
        lookups=LOOKUPS,
        extra_tables={"ARTGRP": pd.DataFrame(columns=["NR", "GRBOMZ"]), "BTW": doubled},
    )
    assert result.errors == {}
    assert result.records["VatCodeId"].to_dict() == {"A": 11, "B": 12}


def test_items_need_the_article_group_table():
    with pytest.raises(MappingError, match="extra_tables\\['ARTGRP'\\]"):
        load_mapping("items").apply(pd.DataFrame({"NR": ["A"]}), administration=ADM, lookups=LOOKUPS)


def test_customer_every_field():
    record = one("customers", debtors())
    assert record == {
        "CostCenterId": 31,
        "InvoiceAddressSameAsVisitAddress": True,
        "ContactPersonName": "Jan Jansen",
        "VisitAddressContactPerson": "Jan Jansen",
        "CustomerCode": "10000",
        "CompanyId": 1,
        "Name": "Bakkerij De Korenbloem B.V.",
        "VisitAddressAddress1": "Hoofdstraat 12 A",
        "VisitAddressCity": "Utrecht",
        "VisitAddressCountryCode": "NL",
        "VisitAddressCountry": "Nederland",
        "VisitAddressEmailAddress": "info@korenbloem.nl",
        "VisitAddressZipCode": "1234 AB",
        "VatNumber": "NL001234567B01",
        "VisitAddressPhoneNumber": "030-1234567",
        "PaymentConditionId": 22,
        "IsActive": True,
        "SendInvoiceTo": "info@korenbloem.nl",
        "VatCodeId": None,  # liability B is not in defaults.customer_vat_codes: the articles' codes apply
        "Identification": "12345678",
        "InvoiceSpecification": True,
        "ManagerEmployeeCompanyId": 41,
    }
    assert json.dumps(record)  # JSON-ready (no numpy scalars, no NaN)


def test_a_customers_vat_code_follows_its_vat_liability_through_the_config():
    # DEB has no VAT-code field: BTWPL I (intra-EU) -> King BTW 3 (defaults.customer_vat_codes)
    assert ADM.defaults.customer_vat_codes == {}  # by default: no customer VAT code at all
    assert one("customers", debtors(BTWPL="I"))["VatCodeId"] is None
    adm = ADM.model_copy(
        update={"defaults": ADM.defaults.model_copy(update={"customer_vat_codes": {"I": 3}})}
    )
    result = load_mapping("customers").apply(debtors(BTWPL="I"), administration=adm, lookups=LOOKUPS)
    assert result.records.iloc[0]["VatCodeId"] == 13


def test_customer_values_are_json_ready_and_nan_robust():
    frame = debtors(
        NAAM2=np.nan,
        STRAAT=None,
        HNR=np.nan,
        HNRTV=np.nan,
        ADRES="Kerkweg 1",
        LAND=None,
        EMAIL=np.nan,
        TEL=None,
        KPL=np.nan,
        MEDEWDEC=None,
        BTWPL=np.nan,
        DECLTOEL="N",
        BLOK="J",
        NR=10001.0,
    )
    record = one("customers", frame)
    assert record["CustomerCode"] == "10001"
    assert record["ContactPersonName"] is None and record["SendInvoiceTo"] is None
    assert record["VisitAddressAddress1"] == "Kerkweg 1"  # ADRES when STRAAT is empty
    assert record["VisitAddressCountryCode"] == "NL" and record["VisitAddressCountry"] == "Nederland"
    assert (
        record["CostCenterId"] is None
        and record["ManagerEmployeeCompanyId"] is None
        and record["VatCodeId"] is None
    )
    assert record["IsActive"] is False and record["InvoiceSpecification"] is False
    assert json.dumps(record)


@pytest.mark.parametrize(
    ("land", "code", "name"),
    [
        ("BE", "BE", "België"),
        ("b", "BE", "België"),
        ("DEU", "DE", "Duitsland"),
        (" nl ", "NL", "Nederland"),
        ("", "NL", "Nederland"),
    ],
)
def test_country_code_and_name_from_land(land, code, name):
    record = one("customers", debtors(LAND=land))
    assert (record["VisitAddressCountryCode"], record["VisitAddressCountry"]) == (code, name)


def test_unknown_country_and_invalid_email_fail_the_record_with_reasons():
    frame = pd.concat([debtors(NR=1, LAND="XX"), debtors(NR=2, EMAIL="info at korenbloem"), debtors(NR=3)])
    result = load_mapping("customers").apply(frame, administration=ADM, lookups=LOOKUPS)
    assert list(result.records.index) == ["3"]
    assert "VisitAddressCountryCode: King LAND 'XX' is not a known country" in result.errors["1"]
    assert "VisitAddressCountry: King LAND 'XX'" in result.errors["1"]
    assert (
        "VisitAddressEmailAddress: 'info at korenbloem' is not a valid e-mail address" in result.errors["2"]
    )
    assert "SendInvoiceTo:" in result.errors["2"]


def test_missing_lookup_fails_only_that_record_naming_field_and_code():
    frame = pd.concat(
        [
            debtors(NR=1, BETCOND=9),
            debtors(NR=2, MEDEWDEC="NIEMAND", KPL=999),
            debtors(NR=3),
            debtors(NR=4, KPL=None),
        ]
    )
    result = load_mapping("customers").apply(frame, administration=ADM, lookups=LOOKUPS)
    assert list(result.records.index) == ["3", "4"]
    assert (
        result.errors["1"]
        == "PaymentConditionId: King BETCOND 9 is not synced to Qics (payment_conditions) (yet)"
    )
    assert "CostCenterId: King KPL 999 is not synced" in result.errors["2"]
    assert "ManagerEmployeeCompanyId" not in result.errors["2"]  # optional: never a failure
    assert result.records.loc["4", "CostCenterId"] is None  # empty code: no link, no error
    assert result.pending == {}  # 2 failed for its cost center; a failed record is not pending


def test_optional_lookup_leaves_the_link_empty_and_the_record_pending():
    frame = pd.concat([debtors(NR=1, MEDEWDEC="NIEMAND"), debtors(NR=2)])
    result = load_mapping("customers").apply(frame, administration=ADM, lookups=LOOKUPS)
    assert list(result.records.index) == ["1", "2"] and result.errors == {}
    assert result.records.loc["1", "ManagerEmployeeCompanyId"] is None
    assert result.pending == {
        "1": "ManagerEmployeeCompanyId: King MEDEWDEC NIEMAND is not synced to Qics (employees) (yet)"
    }


def test_a_missing_code_says_whether_it_exists_in_king_from_the_state_store():
    """With the state store's lookup (king_qics.lookups.SyncedIds): a code that King does not have,
    one whose own record failed to sync, and one whose entity was never synced read differently."""
    from datetime import UTC, datetime

    from king_qics.lookups import SyncedIds

    read = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    lookups = {
        **LOOKUPS,
        "payment_conditions": SyncedIds(
            LOOKUPS["payment_conditions"],
            entity="payment_conditions",
            king_table="BETCOND",
            failing={"8": "Name: empty (King ZKSL)"},
            last_read=read,
        ),
        "employees": SyncedIds({}, entity="employees", king_table="MEDEWERKER", failing={}, last_read=None),
    }
    frame = pd.concat([debtors(NR=1, BETCOND=9), debtors(NR=2, BETCOND=8), debtors(NR=3, MEDEWDEC="NIEMAND")])
    result = load_mapping("customers").apply(frame, administration=ADM, lookups=lookups)
    assert result.errors["1"] == (
        "PaymentConditionId: King BETCOND 9 does not exist in King (no BETCOND record 9 when "
        "payment_conditions were last read, 2026-11-20 10:00 Amsterdam): correct the code in King, "
        "or add record 9 to King's BETCOND"
    )
    assert result.errors["2"] == (
        "PaymentConditionId: King BETCOND 8 exists in King, but its own sync failed "
        "(payment_conditions 8: Name: empty (King ZKSL))"
    )
    assert result.pending["3"] == (
        "ManagerEmployeeCompanyId: King MEDEWDEC NIEMAND is not synced to Qics yet: employees were "
        "never synced for this administration (the projects/employees DAG syncs them)"
    )


def test_lookups_must_be_passed():
    partial = {name: ids for name, ids in LOOKUPS.items() if name != "employees"}
    with pytest.raises(MappingError, match="lookups\\['employees'\\]"):
        load_mapping("customers").apply(debtors(), administration=ADM, lookups=partial)


def test_required_fields_and_keys():
    frame = pd.concat(
        [debtors(NR=1, NAAM="  "), debtors(NR=None), debtors(NR=3), debtors(NR=3, NAAM="Nieuwer")]
    )
    result = load_mapping("customers").apply(frame, administration=ADM, lookups=LOOKUPS)
    assert result.errors["1"] == "Name: empty (King NAAM)"
    assert result.errors["(row 2 without NR)"] == "King NR is empty"
    assert (
        list(result.records.index) == ["3"] and result.records.loc["3", "Name"] == "Nieuwer"
    )  # last read wins


def test_missing_king_columns_count_as_empty():
    result = load_mapping("customers").apply(
        pd.DataFrame({"NR": [5], "NAAM": ["X"], "BETCOND": [1]}), administration=ADM, lookups=LOOKUPS
    )
    assert result.errors == {}
    assert (
        result.records.loc["5", "VisitAddressAddress1"] is None
        and result.records.loc["5", "IsActive"] is True
    )


def test_employees_from_the_universe_and_active_rule():
    rows = [
        {
            "ZKSL": zksl,
            "ROEPNM": first,
            "VOORLTRS": first[0] + ".",
            "TSNVGSL": middle,
            "ACHTERNM": last,
            "EMAIL": email,
            "BLOK": False,
            "PERSNR": 100 + number,
        }
        for number, (zksl, first, middle, last, email) in enumerate(universe.EMPLOYEES, start=1)
    ]
    rows[0]["DATUITDIENST"] = date(2026, 1, 31)  # left: inactive
    rows[1]["DATUITDIENST"] = "2026-12-31"  # leaves later: active until then
    rows[2]["ROEPNM"] = None  # initials when no first name
    rows.append({"ZKSL": "BLOKKED", "ROEPNM": "Bo", "ACHTERNM": "Blok", "BLOK": "J"})
    result = load_mapping("employees").apply(
        pd.DataFrame(rows), administration=ADM, lookups={}, today=date(2026, 6, 1)
    )
    assert result.errors == {}
    records = result.records
    number = 100 + [e[0] for e in universe.EMPLOYEES].index("SDEVRIES") + 1
    assert records.loc["SDEVRIES"].to_dict() == {
        "Abbreviation": "SDEVRIES",
        "EmployeeNumber": number,
        "FirstName": "S.",
        "MiddleName": "de",
        "LastName": "Vries",
        "EmailAddress": "s.devries@example.nl",
        "IsActive": True,
        "CompanyId": 1,
    }
    assert records.loc["PBAKKER", "MiddleName"] is None  # "" -> None
    assert records.loc["BLOKKED", "EmployeeNumber"] is None  # no PERSNR: no number (Qics: Nullable)
    assert records["IsActive"].to_dict() == {
        "JJANSEN": False,
        "PBAKKER": True,
        "SDEVRIES": True,
        "BLOKKED": False,
    }


def test_employee_number_is_an_integer_and_the_king_key_goes_to_the_abbreviation():
    """Qics's EmployeeNumber is an integer (ResourceNumber); King's key ZKSL is text. A PERSNR that is
    not a whole number fails that record alone, with its reason; a textual ZKSL never reaches the number."""
    frame = pd.DataFrame(
        [
            {"ZKSL": "SDEVRIES", "PERSNR": "103", "ROEPNM": "Sanne", "ACHTERNM": "Vries", "BLOK": "N"},
            {"ZKSL": "12", "PERSNR": "A12", "ROEPNM": "Piet", "ACHTERNM": "Puk", "BLOK": "N"},
            {"ZKSL": "KBOS", "PERSNR": 7.5, "ROEPNM": "Kees", "ACHTERNM": "Bos", "BLOK": "N"},
        ]
    )
    result = load_mapping("employees").apply(frame, administration=ADM, lookups={}, today=date(2026, 6, 1))
    assert list(result.records.index) == ["SDEVRIES"]
    assert result.records.loc["SDEVRIES", "EmployeeNumber"] == 103
    assert result.records.loc["SDEVRIES", "Abbreviation"] == "SDEVRIES"
    assert result.errors == {
        "12": "EmployeeNumber: 'A12' is not a whole number",
        "KBOS": "EmployeeNumber: '7.5' is not a whole number",
    }
    mapping = load_mapping("employees")
    assert mapping.natural_key({"Abbreviation": "SDEVRIES", "CompanyId": 1, "EmployeeNumber": 103}) == {
        "Abbreviation": "SDEVRIES",
        "CompanyId": 1,
    }
    assert mapping.king_key_of({"Abbreviation": "SDEVRIES", "EmployeeNumber": 103}) == "SDEVRIES"


@pytest.mark.parametrize("separator", [";", ",", " ; ", ";\n"])
def test_a_debtor_with_several_email_addresses_is_synced_with_the_first(separator, caplog):
    caplog.set_level(logging.WARNING, logger="king_qics.mapping")
    addresses = ["facturen@korenbloem.nl", "Administratie@Korenbloem.nl", "jan@korenbloem.nl"]
    result = load_mapping("customers").apply(
        debtors(EMAIL=separator.join(addresses) + separator), administration=ADM, lookups=LOOKUPS
    )
    assert result.errors == {}
    record = result.records.iloc[0]
    assert record["VisitAddressEmailAddress"] == record["SendInvoiceTo"] == "facturen@korenbloem.nl"
    warning = (
        "VisitAddressEmailAddress, SendInvoiceTo: 3 e-mail addresses (facturen@korenbloem.nl;"
        " Administratie@Korenbloem.nl; jan@korenbloem.nl): only the first, facturen@korenbloem.nl, is synced"
    )
    assert result.warnings["10000"].startswith(warning)
    assert f"customers 10000: {warning}" in caplog.text


def test_email_lists_with_an_invalid_address_fail_and_one_address_does_not_warn():
    frame = pd.concat(
        [
            debtors(NR=1, EMAIL="a@korenbloem.nl; geen adres"),
            debtors(NR=2, EMAIL=" ; "),
            debtors(NR=3, EMAIL="b@korenbloem.nl;"),
            debtors(NR=4, EMAIL="c@korenbloem.nl"),
        ]
    )
    result = load_mapping("customers").apply(frame, administration=ADM, lookups=LOOKUPS)
    assert list(result.records.index) == ["2", "3", "4"]
    assert (
        "VisitAddressEmailAddress: 'a@korenbloem.nl; geen adres' holds an invalid e-mail address"
        " ('geen adres')" in result.errors["1"]
    )
    assert result.records.loc["2", "SendInvoiceTo"] is None
    assert result.records.loc["3", "SendInvoiceTo"] == "b@korenbloem.nl"
    assert result.warnings == {}


def test_projects_from_kdr():
    frame = pd.DataFrame(
        [
            {
                "NR": 5001,
                "OMSCHR": "Herinrichting",
                "DEB": 10000,
                "MEDEWDEC": "PBAKKER",
                "KPL": 200,
                "DATAANVANG": date(2026, 1, 1),
                "DATGEREED": None,
                "BLOK": False,
            },
            {
                "NR": 5002,
                "OMSCHR": "Intern",
                "DEB": None,
                "MEDEWDEC": None,
                "KPL": None,
                "DATAANVANG": "2026-02-01",
                "DATGEREED": pd.Timestamp("2026-03-31"),
                "BLOK": True,
            },
            {"NR": 5003, "OMSCHR": "Kapot", "DEB": 77777, "DATAANVANG": "geen datum"},
        ]
    )
    result = load_mapping("projects").apply(frame, administration=ADM, lookups=LOOKUPS)
    assert result.records.loc["5001"].to_dict() == {
        "ProjectCode": "5001",
        "Name": "Herinrichting",
        "CompanyId": 1,
        "CustomerCompanyId": 51,
        "CostCenterId": 32,
        "ManagerEmployeeCompanyId": 42,
        "StartDate": "2026-01-01",
        "EndDate": None,
        "IsActive": True,
        "AllowPlanning": True,
        "HideBudgetsOnTimesheet": False,
        "IsContractReceived": False,
        "IsBudgetMandatoryOnTimeEntry": False,
    }
    intern = result.records.loc["5002"]
    assert (
        intern["CustomerCompanyId"] is None
        and intern["EndDate"] == "2026-03-31"
        and intern["IsActive"] is False
    )
    assert "CustomerCompanyId: King DEB 77777 is not synced" in result.errors["5003"]
    assert "StartDate: 'geen datum' is not a date" in result.errors["5003"]


# -- transforms in isolation ------------------------------------------------------------------


def test_transforms_catalogue():
    from king_qics.mapping import transforms as tf

    ctx = tf.Context(pd.DataFrame(index=range(4)), ADM)
    series = pd.Series([" 12 ", 7.0, None, "x"], dtype=object)
    assert tf.t_str(series, ctx, None)[0].tolist() == [" 12 ", "7", None, "x"]
    assert tf.t_strip(series, ctx, None)[0].tolist() == ["12", "7", None, "x"]
    values, errors = tf.t_int(series, ctx, None)
    assert values.tolist() == [12, 7, None, None] and errors.tolist() == [
        None,
        None,
        None,
        "'x' is not a whole number",
    ]
    values, errors = tf.t_decimal(pd.Series(["21,5", 9.1, None, "abc"], dtype=object), ctx, None)
    assert (
        values.tolist() == [Decimal("21.5"), Decimal("9.1"), None, None]
        and errors.iloc[3] == "'abc' is not a number"
    )
    values, errors = tf.t_bool(pd.Series(["J", False, None, "?"], dtype=object), ctx, None)
    assert values.tolist() == [True, False, None, None] and errors.iloc[3] == "'?' is not J/N"
    assert tf.t_not_blocked(pd.Series([True, "N", None, np.nan], dtype=object), ctx, None)[0].tolist() == [
        False,
        True,
        True,
        True,
    ]
    assert tf.t_truncate(pd.Series(["abcdef", None, "ab", 12345], dtype=object), ctx, "3")[0].tolist() == [
        "abc",
        None,
        "ab",
        "123",
    ]
    joined = tf.t_join(
        pd.DataFrame(
            {
                "a": ["Dorpsstraat", None, " ", "Laan"],
                "b": [1.0, None, None, 3],
                "c": [None, None, None, "bis"],
            }
        ),
        ctx,
        None,
    )[0]
    assert joined.tolist() == ["Dorpsstraat 1", None, None, "Laan 3 bis"]
    dates = tf.t_date(
        pd.Series([date(2026, 5, 4), "2026-05-04T10:00:00", None, pd.NaT], dtype=object), ctx, None
    )[0]
    assert dates.tolist() == ["2026-05-04", "2026-05-04", None, None]


# -- hashing and volume -----------------------------------------------------------------------


def test_record_hash_is_stable_and_sensitive():
    base = {"Code": "1", "Percentage": Decimal("21"), "CompanyId": 1, "ReverseCharge": False, "Name": None}
    same = {
        "Name": float("nan"),
        "ReverseCharge": False,
        "CompanyId": np.int64(1),
        "Percentage": 21.0,
        "Code": "1",
    }
    assert record_hash(base) == record_hash(same) == record_hash(pd.Series(same))
    assert record_hash(base) == record_hash({**base, "Percentage": Decimal("21.00")})
    assert record_hash(base) != record_hash({**base, "Name": "x"})
    assert record_hash(base) != record_hash({**base, "Code": 1.5})
    assert len(record_hash(base)) == 64


def test_hundred_thousand_debtors_map_column_wise():
    count = 100_000
    frame = pd.DataFrame(
        {
            "NR": np.arange(count) + 10_000,
            "NAAM": [f"Klant {i}" for i in range(count)],
            "NAAM2": "Jan",
            "STRAAT": np.where(np.arange(count) % 2 == 0, "Hoofdstraat", None),
            "HNR": np.arange(count) % 300,
            "HNRTV": None,
            "ADRES": "Kerkweg 1",
            "POSTCD": "1234 AB",
            "PLAATS": "Utrecht",
            "LAND": np.where(np.arange(count) % 3 == 0, "BE", "NL"),
            "EMAIL": [f"k{i}@example.nl" for i in range(count)],
            "TEL": "030",
            "BTWNR": None,
            "KVKNR": "123",
            "BETCOND": np.where(np.arange(count) % 1000 == 0, 9, 1),  # 100 unknown conditions
            "BTWPL": "B",
            "KPL": 100,
            "BLOK": np.arange(count) % 10 == 0,
            "DECLTOEL": False,
            "MEDEWDEC": "JJANSEN",
        }
    )
    result = load_mapping("customers").apply(frame, administration=ADM, lookups=LOOKUPS)
    assert len(result.records) == count - 100 and len(result.errors) == 100
    assert int((~result.records["IsActive"].astype(bool)).sum()) == count // 10 - 100
    assert result.records.loc["10003"].to_dict()["VisitAddressCountryCode"] == "BE"
    sample = result.records.iloc[:1000]
    hashes = sample.pipe(lambda frame: frame.apply(record_hash, axis=1))
    assert hashes.is_unique


def test_a_file_in_include_mappings_overrides_the_package_s(tmp_path, monkeypatch):
    """include/mappings/ beside the DAG folder is the documented override, file by file."""
    override = tmp_path / "include" / "mappings"
    override.mkdir(parents=True)
    data = yaml.safe_load((MAPPINGS / "cost_centers.yaml").read_text(encoding="utf-8"))
    data["description"] = "our own cost centers"
    (override / "cost_centers.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    (override / "countries.yaml").write_text("NL: {name: Holland}\n", encoding="utf-8")
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path / "dags"))
    from king_qics.mapping.transforms import countries

    assert load_mapping("cost_centers").description == "our own cost centers"
    assert load_mapping("vat_codes").description == load_mapping("vat_codes", MAPPINGS).description
    assert countries() == ({"NL": "NL"}, {"NL": "Holland"})
    monkeypatch.delenv("AIRFLOW__CORE__DAGS_FOLDER")
    assert load_mapping("cost_centers").description != "our own cost centers"
