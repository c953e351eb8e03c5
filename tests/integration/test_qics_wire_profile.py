"""QicsMilestonesHook and its wire profile against the Qics emulator over real HTTP: enum and date
literals, both next-link names and the full-page check, the invoice-line set and its field names,
the PDF route, client authentication and the API key, $metadata; and, against the alternative
profile, that every setting is needed and that matching extras give the default's results."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
from decimal import Decimal

import pytest

from king_qics.errors import AuthenticationError, ProtocolError
from king_qics.hooks.qics import QicsMilestonesHook
from king_qics.hooks.qics.oauth import clear_process_cache
from king_qics.hooks.qics.profile import QicsProfile
from king_qics.state import StateStore
from sandbox import universe
from sandbox.qics.profile import API_KEY, MATCHING_EXTRAS
from tests.demo_data import qics_only_fixture as demo_fixture
from tests.sandbox_oauth import new_refresh_token

FAST = {"timeout": 2.0, "max_attempts": 2, "backoff_initial": 0.01, "backoff_max": 0.1}
NS = "QicsUnity.Api.Areas.V3.Models"
ALT = MATCHING_EXTRAS["alt"]


@pytest.fixture
def sb(request):
    clear_process_cache()
    return request.getfixturevalue("qics_sandbox")  # demo data, default profile, faults off


@pytest.fixture
def connect(sb, tmp_path, monkeypatch):
    """connect(**extras) -> a hook on a fresh connection (own refresh token and state store)."""
    made = []

    def make(**extras) -> QicsMilestonesHook:
        conn_id = f"qics_profile_{len(made)}"
        extra = {
            "client_id": universe.QICS_CLIENT_ID,
            "client_secret": universe.QICS_CLIENT_SECRET,
            "refresh_token": new_refresh_token(sb),
            "company_id": 1,
            **extras,
        }
        conn = {"conn_type": "qics_milestones", "host": sb.qics_url, "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        store = StateStore(f"sqlite:///{tmp_path}/state{len(made)}.db")
        store.create_schema()
        made.append(QicsMilestonesHook(conn_id, token_store=store.tokens, **FAST))
        return made[-1]

    yield make
    for hook in made:
        hook.close()


def use_profile(sb, name: str) -> None:
    sb.admin("qics", "POST", "profile", json={"name": name})


# -- the profile -------------------------------------------------------------------------------------


def test_the_hook_reads_its_profile_from_the_connection_s_extras(connect):
    """(The profile's parsing and the $filter it renders: tests/unit/test_profiles.py.)"""
    hook = connect(enum_literal_style="bare", server_page_size="50", unrelated="x")
    assert hook.profile.enum_literal_style == "bare" and hook.profile.server_page_size == 50
    assert connect().profile == QicsProfile()


# -- literals: the hook's own queries are accepted, the other style is refused as the service would --


def test_enum_literals_are_type_qualified(sb, connect):
    hook = connect()
    assert [i["InvoiceNumber"] for i in hook.processed_invoices(2)] == ["Z2026001", "Z2026002", "Z2026003"]
    state = hook.post_entity_state(entity_id=1, data_source="King")
    found = hook.find("EntityState", {"EntityType": "Invoice", "EntityId": 1, "DataSource": "King"})
    assert found["EntityStateId"] == state["EntityStateId"] and found["EntityType"] == "Invoice"
    with pytest.raises(ProtocolError, match="A binary operator with incompatible types was detected"):
        connect(enum_literal_style="bare").processed_invoices(2)


def test_date_literals_against_datetimeoffset(sb, connect):
    since = connect().processed_invoices(1, date_from="2026-11-01")
    assert [i["InvoiceNumber"] for i in since] == ["N2026004", "N2026005"]
    with pytest.raises(ProtocolError, match="No coercion operator is defined between types"):
        connect(date_literal_style="date").processed_invoices(1, date_from="2026-11-01")


# -- paging ------------------------------------------------------------------------------------------


def _cost_centers(sb, n: int) -> None:
    fixture = demo_fixture()
    fixture["qics"]["entities"]["CostCenter"] = [
        {"CompanyId": "1", "Code": f"{i:04d}", "Name": f"KP {i}", "IsActive": True} for i in range(n)
    ]
    sb.load(fixture)


def test_follows_odata_v3_next_links(sb, connect):
    fixture = demo_fixture()
    fixture["qics"]["page_size"] = 4
    sb.load(fixture)
    use_profile(sb, "alt")
    hook = connect(**ALT)
    assert len(list(hook.iter_records("Invoice"))) == 11
    assert sb.calls("qics")["GET Invoice"] == 3


def _full_page_without_link(sb, n: int) -> None:
    """The next GET CostCenter answers a page of n records with no next link, whatever exists."""
    page = [{"CostCenterId": str(i + 1), "Code": f"{i:04d}", "Name": "x", "IsActive": True} for i in range(n)]
    body = json.dumps({"@odata.context": "x", "value": page})
    sb.faults(
        "qics",
        {"kind": "raw_response", "count": 1, "operations": ["GET CostCenter"], "status": 200, "body": body}
        | {"content_type": "application/json"},
    )


def test_a_full_page_without_next_link_is_never_a_silent_stop(sb, connect):
    _cost_centers(sb, 150)
    _full_page_without_link(sb, 100)
    with pytest.raises(ProtocolError, match=r"without a next link, but \$skip=100 finds more"):
        list(connect().iter_records("CostCenter"))
    _full_page_without_link(sb, 100)  # asked for 100 ourselves: exactly that is the end
    assert len(list(connect().iter_records("CostCenter", top=100))) == 100
    _full_page_without_link(sb, 100)  # the check switched off: the page is all there is
    assert len(list(connect(server_page_size=0).iter_records("CostCenter"))) == 100


def test_a_full_last_page_is_checked_once_and_ends(sb, connect):
    _cost_centers(sb, 200)
    assert len(list(connect().iter_records("CostCenter"))) == 200
    assert sb.calls("qics")["GET CostCenter"] == 3  # two pages, one look past the full last page


# -- invoice lines, PDF, metadata -------------------------------------------------------------------------


def test_invoice_lines_come_from_the_overview_set(sb, connect):
    invoice = next(i for i in connect().processed_invoices(1) if i["InvoiceNumber"] == "N2026002")
    lines = [
        (ln["InvoiceLineId"], ln["AmountExclVat"], ln["VatCodeId"], ln["GLAccountRevenue"])
        for ln in invoice["lines"]
    ]
    assert lines == [
        (2, Decimal("950.00"), 2, "8000"),
        (3, Decimal("440.00"), 2, "8010"),
        (4, Decimal("45.50"), 3, "8020"),
    ]
    assert "GET OverviewInvoiceLine" in sb.calls("qics") and "GET InvoiceLine" not in sb.calls("qics")


def test_metadata(sb, connect):
    meta = connect().metadata()
    assert set(meta.entity_sets["InvoiceLine"]) == {
        "InvoiceLineId",
        "Date",
        "Description",
        "InvoiceGroup",
        "Price",
        "Remarks",
        "Quantity",
        "InvoiceMutationReasonId",
    }
    assert meta.entity_sets["OverviewInvoiceLine"]["InvoiceHeaderId"] == "Edm.Int64"
    assert meta.enum_type_of("Invoice", "InvoiceHeaderState") == f"{NS}.InvoiceHeaderState"
    assert "Processed" in meta.enum_types[f"{NS}.InvoiceHeaderState"]
    assert meta.keys["Invoice"] == ("InvoiceHeaderId",)
    use_profile(sb, "alt")
    alt = connect(**ALT).metadata()
    assert "SalesInvoiceLine" in alt.entity_sets and "OverviewInvoiceLine" not in alt.entity_sets
    assert "Final" in alt.enum_types[f"{NS}.InvoiceHeaderState"]


# -- the alternative profile: matching extras give the default's results, each setting is needed ------


def outcome(hook: QicsMilestonesHook):
    """What the export would read: the processed invoices since October (and which are credit notes)
    with their lines (our field names, every field name present) and the first one's PDF; or the
    error."""
    try:
        invoices = hook.processed_invoices(1, date_from=dt.date(2026, 10, 1))
        pdf = hook.invoice_pdf(invoices[0]["InvoiceHeaderId"])
    except (AuthenticationError, ProtocolError) as exc:
        return type(exc).__name__
    mine = ("InvoiceLineId", "AmountExclVat", "VatCodeId", "VatPercentage", "VatAmount", "GLAccountRevenue")
    return (
        [
            (
                i["InvoiceNumber"],
                i["InvoiceHeaderType"] == hook.profile.credit_note_type,
                [(tuple(ln.get(f) for f in mine), tuple(sorted(ln))) for ln in i["lines"]],
            )
            for i in invoices
        ],
        pdf and hashlib.sha256(pdf).hexdigest(),
    )


def test_alt_profile_with_matching_extras_reads_what_the_default_reads(sb, connect):
    expected = outcome(connect())
    assert isinstance(expected, tuple) and len(expected[0]) == 6 and expected[1]
    use_profile(sb, "alt")
    assert outcome(connect(**ALT)) == expected
    assert outcome(connect()) == "AuthenticationError"  # the default extras: refused at the token request


@pytest.mark.parametrize("setting", sorted(set(ALT) - {"date_literal_style"}))
def test_alt_profile_needs_every_setting(sb, connect, setting):
    """Without any one alt setting the read fails or differs. (date_literal_style is the exception:
    the alt service takes both date forms; the default service refuses bare dates, tested above.)"""
    use_profile(sb, "alt")
    expected = outcome(connect(**ALT))
    assert outcome(connect(**{k: v for k, v in ALT.items() if k != setting})) != expected


def test_api_key_and_basic_auth_stay_out_of_the_logs(sb, connect, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    use_profile(sb, "alt")
    hook = connect(**ALT)
    hook.processed_invoices(2)
    with pytest.raises(AuthenticationError, match="by HTTP Basic, API key in ApiKey") as info:
        list(connect(**{**ALT, "api_key": "wrong-key"}).iter_records("Company"))
    captured = capsys.readouterr()
    text = caplog.text + captured.out + captured.err + str(info.value)
    assert "qics" in caplog.text
    basic = base64.b64encode(f"{universe.QICS_CLIENT_ID}:{universe.QICS_CLIENT_SECRET}".encode()).decode()
    for secret in (API_KEY, "wrong-key", universe.QICS_CLIENT_SECRET, basic):
        assert secret not in text
    with pytest.raises(AuthenticationError, match="no api_key extra"):
        list(connect(**{k: v for k, v in ALT.items() if k != "api_key"}).iter_records("Company"))
