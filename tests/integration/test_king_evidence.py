"""What public evidence says the real King Cloudswitch service does (issue 15; research notes in
api_evidence_2026-12.md): the emulator refuses what the real service refuses, and the hook sends
what the working clients send. Raw SOAP for the emulator's side, the hook for ours."""

from __future__ import annotations

import base64
import json
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from xml.sax.saxutils import escape

import requests
from lxml import etree
from requests.adapters import HTTPAdapter

from king_qics.hooks.king import KingFinanceHook
from tests.demo_data import load_fixture
from tests.integration.invoice_env import bookings, run, set_king_extra
from tests.integration.king_wire import (
    NS,
    boe,
    call,
    create_journaalpost,
    journaalpost,
    login,
    post11,
    select,
    table1,
)

PDF = base64.b64encode(b"%PDF-1.4 factuur").decode()


def hook(**kwargs) -> KingFinanceHook:
    return KingFinanceHook("king_noord", timeout=5, max_attempts=2, **kwargs)


@contextmanager
def sent_bodies():
    """Every request body this process sends while inside (the wire as it leaves the hook)."""
    bodies: list[bytes] = []
    original = HTTPAdapter.send

    def send(adapter, request, *args, **kwargs):
        bodies.append(request.body if isinstance(request.body, bytes) else str(request.body).encode())
        return original(adapter, request, *args, **kwargs)

    HTTPAdapter.send = send
    try:
        yield bodies
    finally:
        HTTPAdapter.send = original


def selections(bodies: list[bytes], operation: str) -> list[etree._Element]:
    out = []
    for body in bodies:
        root = etree.fromstring(body)
        param = root.find(f".//{{{NS}}}{operation}/{{{NS}}}Selectie")
        if param is not None:
            out.append(etree.fromstring(param.text.encode()))
    return out


# -- the emulator refuses what the real service refuses -------------------------------------------------


def test_a_selection_without_the_where_and_orderby_tags_is_refused_as_king_does(king):
    session = login(king)
    bare = "<NewDataSet><Table1><TABLE>DEB</TABLE><SELECTFIELDS>NR</SELECTFIELDS><WHEREFIELDS/>"
    bare += "<WHEREOPERATORS/><WHEREVALUES/></Table1></NewDataSet>"
    out = call(king, session, "GetStamtabelRecords", f"<Selectie>{escape(bare)}</Selectie><Records/>")
    assert out["GetStamtabelRecordsResult"] == "false"
    assert out["Foutmelding"] == "De selectie is incompleet, zie veld: ORDERBY"
    adm = (
        "<NewDataSet><Table1><TABLE>BASFIN</TABLE><SELECTFIELDS>AANTPER</SELECTFIELDS></Table1></NewDataSet>"
    )
    out = call(king, session, "GetAdmInfo", f"<Selectie>{escape(adm)}</Selectie><Records/>")
    assert out["Foutmelding"] == "De selectie is incompleet, zie veld: WHEREFIELDS"
    rows, meta, _ = select(king, session, TABLE="DEB", SELECTFIELDS="NR")  # empty tags: fine
    assert meta["RECORDCOUNT"] == 12


def test_several_orderby_fields_are_joined_with_semicolons_as_the_working_clients_do(king):
    session = login(king)
    rows, _, out = select(king, session, TABLE="DEB", SELECTFIELDS="NR\tPLAATS", ORDERBY="PLAATS;NR")
    assert out["GetStamtabelRecordsResult"] == "true" and rows[0]["PLAATS"] <= rows[-1]["PLAATS"]
    _, _, out = select(king, session, TABLE="DEB", SELECTFIELDS="NR", ORDERBY="PLAATS,NR")
    assert out["GetStamtabelRecordsResult"] == "false" and "PLAATS,NR" in out["Foutmelding"]
    king.admin("king", "POST", "profile", json={"name": "alt"})
    _, _, out = select(king, session, TABLE="DEB", SELECTFIELDS="NR", ORDERBY="PLAATS,NR")
    assert out["GetStamtabelRecordsResult"] == "true"
    _, _, out = select(king, session, TABLE="DEB", SELECTFIELDS="NR", ORDERBY="PLAATS;NR")
    assert out["GetStamtabelRecordsResult"] == "false"


def test_only_fields_the_real_table_has_may_be_selected(king):
    session = login(king)
    for field in ("BTW", "TELEFOON"):  # DEB has neither (official field list; a live client dropped TELEFOON)
        _, _, out = select(king, session, TABLE="DEB", SELECTFIELDS=f"NR\t{field}")
        assert out["GetStamtabelRecordsResult"] == "false"
        assert out["Foutmelding"] == f"Veld {field} is onbekend in tabel DEB"
    rows, _, _ = select(
        king,
        session,
        TABLE="ART",
        SELECTFIELDS="NR\tBTW",
        WHEREFIELDS="NR",
        WHEREOPERATORS="=",
        WHEREVALUES="ADV",
    )
    assert rows == [{"NR": "ADV", "BTW": "B"}]  # a one-character code, not a BTW.NR


def test_a_public_clients_basalg_selection_is_answered(king):
    session = login(king)
    fields = "NAAM\tNAAM2\tADRES\tPOSTCD\tPLAATS\tLAND\tBTWNR"
    selection = f"<NewDataSet>{table1(TABLE='BASALG', SELECTFIELDS=fields)}</NewDataSet>"
    out = call(king, session, "GetAdmInfo", f"<Selectie>{escape(selection)}</Selectie><Records/>")
    assert out["GetAdmInfoResult"] == "true", out["Foutmelding"]
    assert etree.fromstring(out["Records"].encode()).findtext("BASALG/NAAM") == "Adviesbureau Noord B.V."


def test_a_selection_sent_as_nested_xml_instead_of_a_string_is_refused(king):
    session = login(king)
    nested = (
        f"<Selectie><NewDataSet>{table1(TABLE='DEB', SELECTFIELDS='NR')}</NewDataSet></Selectie><Records/>"
    )
    body = f"<PartnerKey>x</PartnerKey><Omgevingscode>00000</Omgevingscode><SessionId>{session}</SessionId>"
    response = post11(king, "GetStamtabelRecords", body + nested)
    assert response.status_code == 500 and b"soap:Client" in response.content
    assert (
        b"ReadElementString method can only be called on elements with simple or empty content"
        in response.content
    )


def test_valid_base64_in_an_untyped_dataset_is_refused_cs312_and_a_typed_one_is_booked(king):
    session = login(king)
    untyped = create_journaalpost_raw(
        king, session, journaalpost(boe(), digdos=[{"FILENAME": "f.pdf", "FILE": PDF}], typed=False)
    )
    assert untyped["CreateJournaalpostResult"] == "false"
    assert untyped["Foutmelding"].endswith("naar het type System.Byte[]. (CS312)")
    typed = create_journaalpost(king, session, boe(), digdos=[{"FILENAME": "f.pdf", "FILE": PDF}])
    assert typed["CreateJournaalpostResult"] == "true", typed["Foutmelding"]
    king.admin("king", "POST", "profile", json={"name": "alt"})  # takes untyped files only
    again = create_journaalpost(
        king, session, boe(FACT="2026-0043"), digdos=[{"FILENAME": "g.pdf", "FILE": PDF}]
    )
    assert again["CreateJournaalpostResult"] == "false" and "schema" in again["Foutmelding"]


def create_journaalpost_raw(king, session, dataset: str) -> dict:
    return call(
        king,
        session,
        "CreateJournaalpost",
        f"<Journaalpost><![CDATA[{dataset}]]></Journaalpost><Primarykey/>",
    )


# -- the hook sends what the working clients send ----------------------------------------------------


def test_the_hook_speaks_soap_11_and_sends_every_tag_as_a_cdata_string(env):
    with sent_bodies() as bodies, hook() as h:
        h.read_table("DEB", ["NR"], where=[("NR", ">=", 0)], order_by=["PLAATS"])
        h.booking_files("70;2026;11;1")
        h.get_adm_info()
    first = bodies[0]
    assert b"http://schemas.xmlsoap.org/soap/envelope/" in first  # SOAP 1.1 (POC, BokitoAiV2 ran live)
    reads = [row.find("Table1") for row in selections(bodies, "GetStamtabelRecords")]
    assert all(
        b"<Selectie><![CDATA[<NewDataSet>" in body for body in bodies if b"GetStamtabelRecords>" in body
    )
    tags = [child.tag for child in reads[0]]
    assert tags == [
        "TABLE",
        "SELECTFIELDS",
        "WHEREFIELDS",
        "WHEREOPERATORS",
        "WHEREVALUES",
        "ORDERBY",
        "MAXRESULT",
        "PAGESIZE",
        "SELECTPAGE",
    ]
    assert reads[0].findtext("ORDERBY") == "PLAATS;NR"
    assert reads[1].findtext("ORDERBY") == "RG"  # a look-up of one booking orders by one field
    adm = selections(bodies, "GetAdmInfo")[0]
    assert all(row.find("ORDERBY") is not None and row.find("WHEREFIELDS") is not None for row in adm)


def test_a_booking_with_its_pdf_is_sent_typed(env):
    with hook() as h:
        posted = h.post_journal_entry(boe_row(), pdf=("f.pdf", b"%PDF-1.4 x", "Factuur"), before_attempt=None)
        assert [f["FILENAME"] for f in h.booking_files(posted.key)] == ["f.pdf"]


def boe_row(**changes) -> dict:
    row = {
        "DAGB": 70, "JR": 2026, "PN": 11, "DAT": date(2026, 11, 25), "REK": 10000, "TEGREK": 8000, "BTW": 1,
        "BEDRBOEK": Decimal("100.00"), "BEDRBTW": Decimal("21.00"), "FACT": "2026-0042", "OPM": "marker-42",
    }  # fmt: skip
    return {**row, **changes}


def test_a_primary_key_in_an_unknown_format_is_taken_from_the_echo_or_read_back(env):
    king = env
    with hook() as h:
        king.admin(
            "king", "POST", "answer_shape", json={"environment_code": "00000", "primary_key": "opaque"}
        )
        echoed = h.post_journal_entry(boe_row())
        assert echoed.key.startswith("70;2026;11;") and echoed.fact == "2026-0042"
        king.admin(
            "king",
            "POST",
            "answer_shape",
            json={"environment_code": "00000", "primary_key": "none", "echo": False},
        )
        found = h.post_journal_entry(boe_row(FACT="2026-0043", OPM="marker-43"))
        assert found.key.startswith("70;2026;11;") and found.key != echoed.key and found.fact == "2026-0043"


# -- fiscal years and periods from King's own period dates ----------------------------------------------


def broken_year(env, periods: int, **invoice_dates) -> None:
    """noord's fiscal year starts on 1 July, with ``periods`` periods; nothing is closed."""
    fixture = load_fixture()
    for invoice in fixture["qics"]["entities"]["Invoice"]:
        invoice["InvoiceDate"] = invoice_dates.get(invoice["InvoiceNumber"], invoice["InvoiceDate"])
    adm = fixture["king"]["administrations"][0]
    adm["fiscal_year_start"] = 7
    adm["adm_info"]["BASFIN"]["AANTPER"] = periods
    adm["adm_info"]["PERIODEINFO"].update(JRAFGESLGEBR=2025, PNAFGESLGEBR=14)
    env.load(fixture)


def test_a_broken_fiscal_year_books_into_its_own_year_and_period(env):
    broken_year(env, 12)
    run(env)
    first = bookings(env)["N2026001"][0]  # 2026-10-05: the fourth month of the year from July 2026
    assert (first["JR"], first["PN"]) == (2026, 4)


def test_thirteen_periods_of_four_weeks_book_into_the_right_period(env):
    broken_year(env, 13, N2026002="2026-10-25T10:00:00Z")
    run(env)
    # four-week periods from 1 July: P4 is 23 September - 20 October, P5 from 21 October
    assert [(r["JR"], r["PN"]) for r in bookings(env)["N2026001"]] == [(2026, 4)]  # 5 October
    assert {(r["JR"], r["PN"]) for r in bookings(env)["N2026002"]} == {(2026, 5)}  # 25 October


def test_without_period_dates_the_calendar_decides(env, monkeypatch):
    set_king_extra(monkeypatch, period_dates_table="")
    broken_year(env, 12)
    run(env)
    first = bookings(env)["N2026001"][0]
    assert (first["JR"], first["PN"]) == (2026, 10)  # calendar arithmetic, the documented fallback


def test_period_dates_under_other_names_are_read_as_the_profile_names_them(env, monkeypatch):
    broken_year(env, 12)
    env.admin("king", "POST", "profile", json={"name": "alt"})
    with hook() as h:
        rows = h.get_adm_rows({"PERIODEN": ["JAAR", "PERIODE", "BEGINDATUM", "EINDDATUM"]})["PERIODEN"]
    assert {"JAAR": 2026, "PERIODE": 4, "BEGINDATUM": "01-10-2026", "EINDDATUM": "31-10-2026"} in rows
    assert json.dumps(rows)
    assert requests.get(f"{env.king_base}/_sandbox/state", timeout=10).json()["profile"] == "alt"
    assert requests.get(f"{env.king_base}/_sandbox/profile", timeout=10).json() == {"name": "alt"}
