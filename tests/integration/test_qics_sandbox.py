"""The QicsMilestones emulator over real HTTP: OAuth2, every route, OData paging, validation, faults."""

from __future__ import annotations

import hashlib
import io
import json
from urllib.parse import parse_qs, urlsplit

import pypdf
import pytest
import requests

from sandbox import universe
from tests.demo_data import DEMO, FIXTURES
from tests.demo_data import qics_only_fixture as demo_fixture

TOKEN = "/api/oauth2/oauth2/token"
ODATA = "/api/V3/odata"
CLIENT = {"client_id": universe.QICS_CLIENT_ID, "client_secret": universe.QICS_CLIENT_SECRET}


def refresh(sb, token=universe.QICS_INITIAL_REFRESH_TOKEN, **extra):
    data = {"grant_type": "refresh_token", "refresh_token": token, **CLIENT, **extra}
    return requests.post(sb.qics_url + TOKEN, data=data, timeout=10)


@pytest.fixture
def sb(request):
    return request.getfixturevalue("qics_sandbox")  # demo data loaded, faults off


@pytest.fixture
def api(sb):
    token = refresh(sb).json()["access_token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def call(method, path, **kwargs):
        return session.request(method, sb.qics_url + ODATA + path, timeout=10, **kwargs)

    return call


# -- OAuth2 ----------------------------------------------------------------------------------------


def test_authorization_code_flow(sb):
    redirect = universe.QICS_REDIRECT_URI + "?tenant=x"
    response = requests.get(
        sb.qics_url + "/api/oauth2/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": universe.QICS_CLIENT_ID,
            "redirect_uri": redirect,
            "state": "abc",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    query = parse_qs(location.query)
    assert location.path == "/oauth/callback" and query["state"] == ["abc"] and query["tenant"] == ["x"]
    data = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": redirect, **CLIENT}
    body = requests.post(sb.qics_url + TOKEN, data=data, timeout=10).json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["access_token"] and body["refresh_token"]
    again = requests.post(sb.qics_url + TOKEN, data=data, timeout=10)  # codes are one-time
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_authorize_rejects_a_foreign_redirect_uri(sb):
    response = requests.get(
        sb.qics_url + "/api/oauth2/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": universe.QICS_CLIENT_ID,
            "redirect_uri": "https://evil/",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 400


def test_refresh_tokens_rotate_and_are_single_use(sb):
    first = refresh(sb)
    assert first.status_code == 200
    new_token = first.json()["refresh_token"]
    reuse = refresh(sb)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    second = refresh(sb, new_token)
    assert second.status_code == 200
    assert sb.state("qics")["oauth"]["refresh_grants"] == 2


def test_client_credentials_in_the_body_and_wrong_secret(sb):
    wrong = refresh(sb, client_secret="nope")
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_client"
    # the default profile takes the client credentials in the body only (alt: HTTP Basic only)
    data = {"grant_type": "refresh_token", "refresh_token": universe.QICS_INITIAL_REFRESH_TOKEN}
    basic = requests.post(sb.qics_url + TOKEN, data=data, auth=tuple(CLIENT.values()), timeout=10)
    assert basic.status_code == 400 and basic.json()["error"] == "invalid_client"
    assert "in the body" in basic.json()["error_description"]
    assert refresh(sb).status_code == 200


def test_revoked_refresh_token_is_invalid_grant(sb):
    sb.admin("qics", "POST", "oauth/revoke")
    assert refresh(sb).json()["error"] == "invalid_grant"


@pytest.mark.parametrize("header", [None, "Bearer nonsense"])
def test_missing_or_unknown_bearer_is_401(sb, header):
    headers = {"Authorization": header} if header else {}
    response = requests.get(sb.qics_url + ODATA + "/Company", headers=headers, timeout=10)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_expired_access_token_is_401(sb, api):
    assert api("GET", "/Company").status_code == 200
    sb.admin("qics", "POST", "oauth/expire")
    assert api("GET", "/Company").status_code == 401


def test_short_access_token_ttl(sb):
    fixture = demo_fixture()
    fixture["qics"]["access_token_ttl_seconds"] = 1
    sb.load(fixture)
    assert refresh(sb).json()["expires_in"] == 1


# -- reads -----------------------------------------------------------------------------------------


def test_ids_and_decimals_are_strings_booleans_native(api):
    body = api("GET", "/VatCode(2)").json()
    assert body["VatCodeId"] == "2" and body["Percentage"] == "21" and body["CompanyId"] == "1"
    assert body["IsDefault"] is True and body["ReverseCharge"] is False


@pytest.mark.parametrize(
    ("expression", "codes"),
    [
        ("CompanyId eq 1 and Code eq '1'", ["1"]),
        ("CompanyId eq 2 and Code ne '1'", ["0", "2", "3"]),
        ("CompanyId eq '1' and Percentage gt 0", ["1", "2"]),
        ("CompanyId eq 1 and Percentage ge 9 and Percentage lt 21", ["2"]),
        ("CompanyId eq 1 and Percentage le 0 and ReverseCharge eq true", ["3"]),
        ("CompanyId eq 1 and IcpReturn eq null and Code eq '0'", ["0"]),
        ("Code eq '0' and CompanyId eq 1 or Code eq '3' and CompanyId eq 2", ["0", "3"]),
    ],
)
def test_filter_operators(api, expression, codes):
    body = api("GET", "/VatCode", params={"$filter": expression}).json()
    assert [r["Code"] for r in body["value"]] == codes


def test_filter_string_quote_escaping_and_dates(sb, api):
    created = api(
        "POST",
        "/CustomerCompany",
        json={"CompanyId": 1, "CustomerCode": "O'Brien", "Name": "X", "IsActive": True},
    )
    assert created.status_code == 201
    found = api("GET", "/CustomerCompany", params={"$filter": "CustomerCode eq 'O''Brien'"}).json()["value"]
    assert [r["CustomerCompanyId"] for r in found] == [created.json()["CustomerCompanyId"]]
    # Amsterdam midnight of 1 October 2026, in UTC (InvoiceDate is an Edm.DateTimeOffset)
    invoices = api(
        "GET", "/Invoice", params={"$filter": "CompanyId eq 1 and InvoiceDate lt 2026-09-30T22:00:00Z"}
    ).json()
    assert [r["InvoiceNumber"] for r in invoices["value"]] == ["N2025099"]


ENUM = "QicsUnity.Api.Areas.V3.Models.InvoiceHeaderState"


def test_enum_literals_must_be_type_qualified(api):
    typed = api(
        "GET", "/Invoice", params={"$filter": f"CompanyId eq 1 and InvoiceHeaderState eq {ENUM}'Approved'"}
    )
    assert typed.status_code == 200 and [r["InvoiceNumber"] for r in typed.json()["value"]] == [None]
    bare = api("GET", "/Invoice", params={"$filter": "CompanyId eq 1 and InvoiceHeaderState eq 'Approved'"})
    assert bare.status_code == 400
    assert (
        "A binary operator with incompatible types was detected. Found operand types"
        f" '{ENUM}' and 'Edm.String' for operator kind 'Equal'." in bare.json()["error"]["message"]
    )
    other_type = api(
        "GET",
        "/Invoice",
        params={"$filter": "InvoiceHeaderState ne QicsUnity.Api.Areas.V3.Models.ItemType'Hour'"},
    )
    assert (
        other_type.status_code == 400
        and "for operator kind 'NotEqual'" in other_type.json()["error"]["message"]
    )
    unknown = api("GET", "/Invoice", params={"$filter": f"InvoiceHeaderState eq {ENUM}'Final'"})
    assert unknown.status_code == 400
    assert "'Final' is not a valid enumeration type constant" in unknown.json()["error"]["message"]
    on_text = api("GET", "/Invoice", params={"$filter": f"InvoiceNumber eq {ENUM}'Approved'"})
    assert on_text.status_code == 400 and "'Edm.String' and '" in on_text.json()["error"]["message"]


def test_a_bare_date_against_a_datetimeoffset_is_refused(api):
    bare = api("GET", "/Invoice", params={"$filter": "InvoiceDate ge 2026-10-01"})
    assert bare.status_code == 400
    assert (
        "No coercion operator is defined between types 'Microsoft.OData.Edm.Date' and"
        " 'System.Nullable`1[System.DateTimeOffset]'." in bare.json()["error"]["message"]
    )
    full = api(
        "GET", "/Invoice", params={"$filter": "CompanyId eq 2 and InvoiceDate ge 2026-11-04T00:00:00Z"}
    )
    assert [r["InvoiceNumber"] for r in full.json()["value"]] == ["Z2026003"]
    # an Edm.Date property still compares with a bare date
    assert api("GET", "/Project", params={"$filter": "StartDate ge 2026-01-01"}).status_code == 200


def test_bad_filter_is_400(api):
    response = api("GET", "/VatCode", params={"$filter": "Nope eq 1"})
    assert response.status_code == 400 and "Nope" in response.json()["error"]["message"]


def test_select_orderby(api):
    body = api(
        "GET",
        "/CustomerCompany",
        params={"$select": "CustomerCode,Name", "$orderby": "CustomerCode desc", "$filter": "CompanyId eq 2"},
    ).json()
    assert [r["CustomerCode"] for r in body["value"]] == ["10002", "10001", "10000"]
    assert set(body["value"][0]) == {"CustomerCode", "Name"}


def _paged_fixture(n: int, page_size: int = 100) -> dict:
    fixture = demo_fixture()
    fixture["qics"]["page_size"] = page_size
    fixture["qics"]["entities"]["CostCenter"] = [
        {"CompanyId": "1", "Code": f"{i:04d}", "Name": f"KP {i}", "IsActive": True} for i in range(n)
    ]
    return fixture


@pytest.mark.parametrize("n", [0, 1, 100, 101, 250])
def test_server_paging_with_next_link(sb, api, n):
    sb.load(_paged_fixture(n))
    token = refresh(sb).json()["access_token"]
    url, seen, pages = sb.qics_url + ODATA + "/CostCenter", [], 0
    while url:
        body = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        assert len(body["value"]) <= 100
        seen += [r["Code"] for r in body["value"]]
        url, pages = body.get("@odata.nextLink"), pages + 1
        assert url is None or url.startswith(sb.qics_url)
    assert seen == [f"{i:04d}" for i in range(n)]
    assert pages == max(1, -(-n // 100))


def test_top_and_skip(sb):
    sb.load(_paged_fixture(30, page_size=10))
    token = refresh(sb).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    body = requests.get(
        sb.qics_url + ODATA + "/CostCenter", params={"$top": 25, "$skip": 3}, headers=headers, timeout=10
    ).json()
    assert len(body["value"]) == 25 and body["value"][0]["Code"] == "0003" and "@odata.nextLink" not in body
    body = requests.get(
        sb.qics_url + ODATA + "/CostCenter", params={"$skip": 25}, headers=headers, timeout=10
    ).json()
    assert [r["Code"] for r in body["value"]] == ["0025", "0026", "0027", "0028", "0029"]
    assert "@odata.nextLink" not in body


def test_get_by_key_and_unknown_key(api):
    assert api("GET", "/CustomerCompany(1)").json()["CustomerCode"] == "10000"
    missing = api("GET", "/CustomerCompany(999)")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFound"
    assert api("GET", "/NoSuchSet").status_code == 404


# -- writes ----------------------------------------------------------------------------------------


def test_post_and_put_customer(api):
    record = {
        "CompanyId": "1",
        "CustomerCode": "10005",
        "Name": "Nieuw B.V.",
        "IsActive": True,
        "VatCodeId": 2,
        "PriceIndex": 1.5,
    }
    created = api("POST", "/CustomerCompany", json=record)
    assert created.status_code == 201
    body = created.json()
    key = body["CustomerCompanyId"]
    assert body["PriceIndex"] == "1.5" and body["VatCodeId"] == "2" and body["CustomerId"]
    updated = api(
        "PUT", f"/CustomerCompany({key})", json={**record, "Name": "Hernoemd B.V.", "IsActive": False}
    )
    assert updated.status_code == 200 and updated.json()["Name"] == "Hernoemd B.V."
    assert updated.json()["CustomerId"] == body["CustomerId"]
    assert api("GET", f"/CustomerCompany({key})").json()["IsActive"] is False


@pytest.mark.parametrize(
    ("entity", "record", "target"),
    [
        (
            "CustomerCompany",
            {"CompanyId": 1, "CustomerCode": "1", "Name": "x" * 51, "IsActive": True},
            "Name",
        ),
        ("CustomerCompany", {"CompanyId": 1, "Name": "x", "IsActive": True}, "CustomerCode"),
        (
            "CustomerCompany",
            {"CompanyId": 1, "CustomerCode": "1", "Name": "x", "IsActive": True, "VatCodeId": 99},
            "VatCodeId",
        ),
        (
            "CustomerCompany",
            {"CompanyId": 9, "CustomerCode": "1", "Name": "x", "IsActive": True},
            "CompanyId",
        ),
        (
            "CustomerCompany",
            {"CompanyId": 1, "CustomerCode": "10000", "Name": "x", "IsActive": True},
            "CustomerCode",
        ),
        (
            "CustomerCompany",
            {"CompanyId": 1, "CustomerCode": "1", "Name": "x", "IsActive": "yes"},
            "IsActive",
        ),
        (
            "CustomerCompany",
            {"CompanyId": 1, "CustomerCode": "1", "Name": "x", "IsActive": True, "Bogus": 1},
            "Bogus",
        ),
        (
            "ItemCompany",
            {
                "CompanyId": 1,
                "ItemCode": "X",
                "Name": "x",
                "ItemType": "Nope",
                "WillBeInvoiced": True,
                "AllowTimeEntry": True,
                "AllowPriceModifications": True,
                "IsActive": True,
            },
            "ItemType",
        ),
        (
            "PaymentCondition",
            {"CompanyId": 1, "Code": "1", "Name": "x", "PaymentTerm": 14, "PaymentConditionType": "Weekly"},
            "PaymentConditionType",
        ),
        (
            "Project",
            {
                "ProjectCode": "P1",
                "Name": "x",
                "IsActive": True,
                "AllowPlanning": True,
                "HideBudgetsOnTimesheet": False,
                "IsContractReceived": True,
                "IsBudgetMandatoryOnTimeEntry": False,
            },
            "CompanyId",
        ),
        ("EmployeeCompany", {"CompanyId": 1, "FirstName": "Jan", "IsActive": True}, "LastName"),
        (
            "EmployeeCompany",
            {
                "CompanyId": 1,
                "EmployeeNumber": "SDEVRIES",
                "FirstName": "S",
                "LastName": "V",
                "IsActive": True,
            },
            "EmployeeNumber",
        ),
        (
            "EmployeeCompany",
            {"CompanyId": 99, "FirstName": "Jan", "LastName": "Jansen", "IsActive": True},
            "CompanyId",
        ),
        (
            "EntityState",
            {"CompanyId": 1, "EntityId": 1, "EntityType": "Invoice", "DataSource": "King"},
            "IsError",
        ),
    ],
)
def test_validation_errors(api, entity, record, target):
    response = api("POST", f"/{entity}", json=record)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] and error["message"]
    assert target in [d["target"] for d in error["details"]]


def test_put_unknown_key_is_404_and_invoices_are_read_only(api):
    assert (
        api("PUT", "/CostCenter(999)", json={"Code": "1", "Name": "x", "IsActive": True}).status_code == 404
    )
    assert api("POST", "/Invoice", json={}).status_code == 405
    assert api("PUT", "/Invoice(1)", json={}).status_code == 405


def test_all_writable_sets_accept_a_valid_record(api):
    employee = api(
        "POST", "/Employee", json={"FirstName": "Jan", "LastName": "Jansen", "IsActive": True}
    ).json()
    assert employee["EmployeeId"]
    ec = api(
        "POST",
        "/EmployeeCompany",
        json={
            "CompanyId": 1,
            "EmployeeNumber": 101,
            "Abbreviation": "JJANSEN",
            "FirstName": "Jan",
            "LastName": "Jansen",
            "IsActive": True,
        },
    ).json()
    assert ec["EmployeeId"]  # the global person, assigned by the server
    assert ec["EmployeeNumber"] == 101 and ec["Abbreviation"] == "JJANSEN"  # Edm.Int32: a JSON number
    pc = api(
        "POST",
        "/PaymentCondition",
        json={
            "CompanyId": 1,
            "Code": "1",
            "Name": "14 dagen",
            "PaymentTerm": 14,
            "PaymentConditionType": "Days",
        },
    ).json()
    cc = api(
        "POST", "/CostCenter", json={"CompanyId": 1, "Code": "100", "Name": "Advies", "IsActive": True}
    ).json()
    vc = api(
        "POST",
        "/VatCode",
        json={"CompanyId": 1, "Code": "9", "Name": "x", "Percentage": "5", "IsDefault": False},
    ).json()
    item = api(
        "POST",
        "/ItemCompany",
        json={
            "CompanyId": 1,
            "ItemCode": "NEW",
            "Name": "Nieuw",
            "ItemType": "Hour",
            "VatCodeId": vc["VatCodeId"],
            "GLAccountRevenue": "8000",
            "WillBeInvoiced": True,
            "AllowTimeEntry": True,
            "AllowPriceModifications": False,
            "IsActive": True,
        },
    ).json()
    cust = api(
        "POST",
        "/CustomerCompany",
        json={
            "CompanyId": 1,
            "CustomerCode": "10009",
            "Name": "C",
            "IsActive": True,
            "PaymentConditionId": pc["PaymentConditionId"],
            "CostCenterId": cc["CostCenterId"],
            "ManagerEmployeeCompanyId": ec["EmployeeCompanyId"],
        },
    ).json()
    project = api(
        "POST",
        "/Project",
        json={
            "CompanyId": 1,
            "ProjectCode": "P1",
            "Name": "Project",
            "CustomerCompanyId": cust["CustomerCompanyId"],
            "IsActive": True,
            "AllowPlanning": True,
            "HideBudgetsOnTimesheet": False,
            "IsContractReceived": True,
            "IsBudgetMandatoryOnTimeEntry": False,
            "StartDate": "2026-10-01",
        },
    )
    state = api(
        "POST",
        "/EntityState",
        json={
            "CompanyId": 1,
            "EntityId": 1,
            "EntityType": "Invoice",
            "DataSource": "King",
            "DataSourceKey": "70/123",
            "DataSourceDate": "2026-11-01T10:00:00Z",
            "IsError": False,
        },
    )
    assert item["ItemId"] and project.status_code == 201 and state.status_code == 201
    assert api("GET", "/EntityState").json()["value"][0]["DataSourceKey"] == "70/123"


# -- invoices and PDFs -----------------------------------------------------------------------------


def test_invoice_line_has_exactly_the_documented_properties(api):
    line = api("GET", "/InvoiceLine(1)").json()
    documented = ["InvoiceLineId", "Date", "Description", "InvoiceGroup", "Price", "Remarks", "Quantity"]
    assert set(line) - {"@odata.context"} == {*documented, "InvoiceMutationReasonId"}
    assert line["Date"] == "2026-10-04T22:00:00Z" and line["Price"] == "95.00" and line["Quantity"] == "8"
    for field in ("InvoiceHeaderId", "AmountExclVat", "VatCodeId", "GLAccountRevenue", "CostCenterId"):
        bad = api("GET", "/InvoiceLine", params={"$filter": f"{field} eq 1"})
        assert bad.status_code == 400 and field in bad.json()["error"]["message"]
    overview = api("GET", "/OverviewInvoiceLine", params={"$filter": "InvoiceHeaderId eq 1"}).json()["value"]
    assert [(o["InvoiceLineId"], o["AmountExclVat"], o["ItemCompanyItemCode"]) for o in overview] == [
        ("1", "760.00", "ADV")
    ]
    assert api("POST", "/OverviewInvoiceLine", json={}).status_code == 405


def test_demo_invoices_are_consistent_to_the_cent(api):
    invoices = api("GET", "/Invoice").json()["value"]
    lines = api("GET", "/OverviewInvoiceLine").json()["value"]
    assert len(invoices) == 11
    from decimal import ROUND_HALF_UP, Decimal

    for invoice in invoices:
        mine = [ln for ln in lines if ln["InvoiceHeaderId"] == invoice["InvoiceHeaderId"]]
        assert mine
        for line in mine:
            vat = (Decimal(line["AmountExclVat"]) * Decimal(line["VatPercentage"]) / 100).quantize(
                Decimal("0.01"), ROUND_HALF_UP
            )
            assert Decimal(line["VatAmount"]) == vat
        assert Decimal(invoice["TotalAmountExclVat"]) == sum(Decimal(ln["AmountExclVat"]) for ln in mine)
        assert Decimal(invoice["TotalVatAmount"]) == sum(Decimal(ln["VatAmount"]) for ln in mine)
        total = Decimal(invoice["TotalAmountExclVat"]) + Decimal(invoice["TotalVatAmount"])
        assert Decimal(invoice["TotalAmountInclVat"]) == total
    kinds = {(i["InvoiceHeaderType"], i["InvoiceHeaderState"], i["IsWrittenOff"]) for i in invoices}
    assert ("CreditNote", "Processed", False) in kinds and ("Invoice", "Approved", False) in kinds
    assert ("Invoice", "Processed", True) in kinds


def test_pdf_route(api):
    response = api("GET", "/Invoice(1)/Pdf")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/pdf"
    text = pypdf.PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
    assert "N2026001" in text and "Gemeente Groningen" in text and "919.60" in text
    no_pdf = api("GET", "/Invoice(5)/Pdf")
    assert no_pdf.status_code == 404 and no_pdf.json()["error"]["code"] == "NotFound"
    assert api("GET", "/Invoice(999)/Pdf").status_code == 404


def test_fixture_pdfs_are_small_valid_pdfs():
    pdfs = sorted((FIXTURES / "pdfs").glob("*.pdf"))
    assert len(pdfs) == 10
    for path in pdfs:
        assert path.stat().st_size < 10_000
        assert pypdf.PdfReader(path).pages[0].extract_text().strip()


# -- faults, admin ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "status"), [("http_500", 500), ("http_503", 503), ("http_429", 429)])
def test_http_faults(sb, api, kind, status):
    sb.faults("qics", {"kind": kind, "count": 1, "operations": ["GET Company"], "retry_after": 2})
    response = api("GET", "/Company")
    assert response.status_code == status
    if kind == "http_429":
        assert response.headers["Retry-After"] == "2"
    assert api("GET", "/Company").status_code == 200


def test_latency_and_expire_faults(sb, api):
    sb.faults("qics", {"kind": "latency", "latency_seconds": 0.3, "count": 1})
    import time

    started = time.monotonic()
    assert api("GET", "/Company").status_code == 200
    assert time.monotonic() - started >= 0.3
    sb.faults("qics", {"kind": "expire_session", "count": 1, "operations": ["GET Company"]})
    assert api("GET", "/Company").status_code == 401


def test_drop_after_commit_commits_the_write(sb, api):
    sb.faults("qics", {"kind": "drop_after_commit", "count": 1, "operations": ["POST CostCenter"]})
    with pytest.raises(requests.exceptions.RequestException):
        api("POST", "/CostCenter", json={"CompanyId": 1, "Code": "100", "Name": "A", "IsActive": True})
    codes = [r["Code"] for r in sb.state("qics")["entities"]["CostCenter"]]
    assert codes == ["100"]


def test_calls_are_counted(sb, api):
    api("GET", "/Company")
    api("GET", "/Company(1)")
    api("GET", "/Invoice(1)/Pdf")
    calls = sb.calls("qics")
    assert calls["GET Company"] == 1 and calls["GET Company(key)"] == 1 and calls["GET Invoice/Pdf"] == 1
    assert calls["POST token"] == 1


def test_fixture_round_trip(sb):
    section = json.loads(DEMO.read_text(encoding="utf-8"))["qics"]
    state = sb.state("qics")
    for name, records in section["entities"].items():
        assert state["entities"][name] == [
            {field: value for field, value in record.items()}
            | {k: v for k, v in r.items() if k not in record}
            for record, r in zip(records, state["entities"][name], strict=True)
        ]
    for key, path in section["invoice_pdfs"].items():
        content = (FIXTURES / path).read_bytes()
        assert state["invoice_pdfs"][key] == {
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        }
    # the state itself is a loadable fixture
    reloaded = {**state, "invoice_pdfs": {}}
    reloaded.pop("oauth")
    sb.load({"qics": reloaded, "_base_dir": str(FIXTURES)})
    assert sb.state("qics")["entities"] == state["entities"]


def test_generate(sb):
    sb.load({"qics": {"generate": 50, "seed": 3, "invoices": 120}})
    state = sb.state("qics")
    assert len(state["entities"]["Invoice"]) == 120
    assert len(state["entities"]["CustomerCompany"]) == 50
    assert len(state["invoice_pdfs"]) == 120
    sb.load({"qics": {"generate": 50, "seed": 3, "invoices": 120}})
    assert sb.state("qics")["entities"] == state["entities"]
