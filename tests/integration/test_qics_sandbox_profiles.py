"""The Qics emulator's wire profiles over real HTTP: $metadata, and the alternative profile (bare enum
literals, odata.nextLink, renamed invoice lines, another PDF route and processed state, HTTP Basic
client authentication, an API key), chosen by admin API, fixture key or the serve command's flag."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import requests
from lxml import etree

from sandbox import universe
from sandbox.qics.profile import API_KEY
from sandbox.server import free_port, start_process, stop_process
from tests.demo_data import qics_only_fixture as demo_fixture

TOKEN = "/api/oauth2/oauth2/token"
ODATA = "/api/V3/odata"
NS = "QicsUnity.Api.Areas.V3.Models"
EDM = {"edmx": "http://docs.oasis-open.org/odata/ns/edmx", "edm": "http://docs.oasis-open.org/odata/ns/edm"}
REFRESH = {"grant_type": "refresh_token", "refresh_token": universe.QICS_INITIAL_REFRESH_TOKEN}
CLIENT = (universe.QICS_CLIENT_ID, universe.QICS_CLIENT_SECRET)


@pytest.fixture
def sb(request):
    return request.getfixturevalue("qics_sandbox")  # demo data loaded in the default profile, faults off


def use_profile(sb, name: str) -> dict:
    return sb.admin("qics", "POST", "profile", json={"name": name})


def alt_session(sb) -> requests.Session:
    """A session authorized the way the alt profile wants: HTTP Basic client auth plus the API key."""
    session = requests.Session()
    session.headers["ApiKey"] = API_KEY
    body = session.post(sb.qics_url + TOKEN, data=REFRESH, auth=CLIENT, timeout=10).json()
    session.headers["Authorization"] = f"Bearer {body['access_token']}"
    return session


def default_session(sb) -> requests.Session:
    session = requests.Session()
    data = {**REFRESH, "client_id": CLIENT[0], "client_secret": CLIENT[1]}
    token = session.post(sb.qics_url + TOKEN, data=data, timeout=10).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def metadata(session, sb) -> etree._Element:
    response = session.get(sb.qics_url + ODATA + "/$metadata", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/xml")
    return etree.fromstring(response.content)


def properties(root, entity_type: str) -> dict[str, str]:
    node = root.find(f".//edm:EntityType[@Name='{entity_type}']", EDM)
    return {p.get("Name"): p.get("Type") for p in node.findall("edm:Property", EDM)}


# -- $metadata ---------------------------------------------------------------------------------------


def test_metadata_describes_sets_properties_and_enums(sb):
    session = default_session(sb)
    root = metadata(session, sb)
    sets = {s.get("Name"): s.get("EntityType") for s in root.iter(f"{{{EDM['edm']}}}EntitySet")}
    assert sets["OverviewInvoiceLine"] == f"{NS}.OverviewInvoiceLine" and "InvoiceLine" in sets
    assert properties(root, "InvoiceLine") == {
        "InvoiceLineId": "Edm.Int64",
        "Date": "Edm.DateTimeOffset",
        "Description": "Edm.String",
        "InvoiceGroup": "Edm.String",
        "Price": "Edm.Decimal",
        "Remarks": "Edm.String",
        "Quantity": "Edm.Decimal",
        "InvoiceMutationReasonId": "Edm.Int64",
    }
    invoice = properties(root, "Invoice")
    assert invoice["InvoiceHeaderState"] == f"{NS}.InvoiceHeaderState"
    assert invoice["InvoiceDate"] == "Edm.DateTimeOffset"
    assert properties(root, "EmployeeCompany")["EmployeeNumber"] == "Edm.Int32"
    state = root.find(".//edm:EnumType[@Name='InvoiceHeaderState']", EDM)
    assert [m.get("Name") for m in state] == ["Concept", "Approved", "Processed", "Rejected"]
    assert root.find(".//edm:Schema", EDM).get("Namespace") == NS
    assert requests.get(sb.qics_url + ODATA + "/$metadata", timeout=10).status_code == 401


# -- the alternative profile ---------------------------------------------------------------------------


def test_alt_profile_authenticates_by_basic_and_api_key(sb):
    assert use_profile(sb, "alt")["client_auth"] == "basic"
    url = sb.qics_url + TOKEN
    body_creds = requests.post(
        url, data={**REFRESH, "client_id": CLIENT[0], "client_secret": CLIENT[1]}, timeout=10
    )
    no_key = requests.post(url, data=REFRESH, auth=CLIENT, timeout=10)
    assert body_creds.status_code == 401 and no_key.status_code == 401
    assert {body_creds.json()["error"], no_key.json()["error"]} == {"invalid_client"}
    session = alt_session(sb)  # Basic and the key: a token
    assert session.get(sb.qics_url + ODATA + "/Company", timeout=10).status_code == 200
    without_key = session.get(sb.qics_url + ODATA + "/Company", headers={"ApiKey": ""}, timeout=10)
    assert without_key.status_code == 403 and "ApiKey" in without_key.json()["error"]["message"]


def test_alt_profile_literals_paging_lines_pdf_and_state(sb):
    fixture = demo_fixture()
    fixture["qics"]["page_size"] = 4
    sb.load(fixture)
    use_profile(sb, "alt")
    session = alt_session(sb)
    get = lambda path, **params: session.get(sb.qics_url + path, params=params, timeout=10)  # noqa: E731
    # bare enum literals, typed ones refused; the processed state is served as "Final"
    final = get(ODATA + "/Invoice", **{"$filter": "CompanyId eq 2 and InvoiceHeaderState eq 'Final'"})
    assert [r["InvoiceNumber"] for r in final.json()["value"]] == ["Z2026001", "Z2026002", "Z2026003"]
    assert {r["InvoiceHeaderState"] for r in final.json()["value"]} == {"Final"}
    typed = get(ODATA + "/Invoice", **{"$filter": f"InvoiceHeaderState eq {NS}.InvoiceHeaderState'Final'"})
    assert typed.status_code == 400 and "is not defined in the model" in typed.json()["error"]["message"]
    processed = get(ODATA + "/Invoice", **{"$filter": "InvoiceHeaderState eq 'Processed'"})
    assert processed.status_code == 400
    # a bare date means that day's midnight in Amsterdam
    dated = get(ODATA + "/Invoice", **{"$filter": "CompanyId eq 1 and InvoiceDate lt 2026-10-01"})
    assert [r["InvoiceNumber"] for r in dated.json()["value"]] == ["N2025099"]
    # OData v3 paging link
    page = get(ODATA + "/Invoice").json()
    assert len(page["value"]) == 4 and "odata.nextLink" in page and "@odata.nextLink" not in page
    # lines under another set name and other field names; the default's set is gone
    assert get(ODATA + "/OverviewInvoiceLine").status_code == 404
    lines = get(ODATA + "/SalesInvoiceLine", **{"$filter": "InvoiceId eq 2", "$orderby": "LineId"}).json()
    assert [(r["LineId"], r["NetAmount"], r["VatId"], r["RevenueAccount"]) for r in lines["value"]] == [
        ("2", "950.00", "2", "8000"),
        ("3", "440.00", "2", "8010"),
        ("4", "45.50", "3", "8020"),
    ]
    # another PDF route; the default's is not there
    assert get("/api/V3/invoices/1/pdf").content.startswith(b"%PDF")
    assert get(ODATA + "/Invoice(1)/Pdf").status_code == 404
    assert get("/api/V3/invoices/5/pdf").status_code == 404  # invoice 5 has no PDF
    # $metadata tells the same story
    root = metadata(session, sb)
    assert "NetAmount" in properties(root, "SalesInvoiceLine")
    state = root.find(".//edm:EnumType[@Name='InvoiceHeaderState']", EDM)
    assert "Final" in [m.get("Name") for m in state]


def test_profile_is_chosen_by_fixture_key_and_reset_by_a_load(sb):
    fixture = demo_fixture()
    fixture["qics"]["profile"] = "alt"
    sb.load(fixture)
    assert sb.admin("qics", "GET", "profile")["name"] == "alt" and sb.state("qics")["profile"] == "alt"
    sb.load(demo_fixture())  # no key: the profile the emulator was started with
    assert sb.admin("qics", "GET", "profile")["name"] == "default"
    response = requests.post(f"{sb.qics_base}/_sandbox/profile", json={"name": "nope"}, timeout=10)
    assert response.status_code == 400 and "unknown Qics profile" in response.json()["error"]


def test_serve_flag_starts_in_the_alt_profile():
    king_port, qics_port = free_port(), free_port()
    log = Path(tempfile.mkdtemp(prefix="kqs-sandbox-alt-")) / "sandbox.log"
    with open(log, "w") as output:
        process = start_process(king_port, qics_port, output=output, qics_profile="alt")
    try:
        base = f"http://127.0.0.1:{qics_port}"
        assert requests.get(f"{base}/_sandbox/profile", timeout=10).json()["name"] == "alt"
        requests.post(f"{base}/_sandbox/load", json=demo_fixture()["qics"], timeout=30).raise_for_status()
        assert requests.get(f"{base}/_sandbox/profile", timeout=10).json()["name"] == "alt"  # the flag's
    finally:
        stop_process(process)
