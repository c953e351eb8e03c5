"""The King Cloudswitch emulator over real HTTP: wire format, operations, errors, paging, faults."""

from __future__ import annotations

import base64
import json
import re
import time
from xml.sax.saxutils import escape

import pytest
import requests
from lxml import etree

from tests.integration.king_wire import (
    DOC_LOGIN_12,
    KEY,
    KING_DEMO,
    NS,
    SOAP11,
    answer,
    auth,
    boe,
    call,
    create_journaalpost,
    journaalpost,
    login,
    post11,
    select,
    table1,
)

# -- wire format, sessions -------------------------------------------------------------------------


def test_documented_soap12_login_gets_a_session_id(king):
    response = requests.post(
        king.king_url,
        data=DOC_LOGIN_12.format(key=KEY, env="00000").encode(),
        headers={"Content-Type": "application/soap+xml; charset=utf-8"},
    )
    assert response.headers["content-type"].startswith("application/soap+xml")
    root = etree.fromstring(response.content)
    assert etree.QName(root).namespace == "http://www.w3.org/2003/05/soap-envelope"
    out = answer(response, "Login")
    assert out["LoginResult"] == "true" and out["Foutmelding"] == ""
    assert re.fullmatch(r"\d+/\d+@d\d+;CSW", out["SessionId"])


def test_go_client_style_soap12_with_action_in_text_xml_content_type(king):
    response = requests.post(
        king.king_url,
        data=DOC_LOGIN_12.format(key=KEY, env="31337").encode(),
        headers={"Content-Type": f'text/xml; charset=utf-8; action="{NS}Login"'},
    )
    assert answer(response, "Login")["LoginResult"] == "true"
    assert b"http://www.w3.org/2003/05/soap-envelope" in response.content


def test_soap11_login_keepsession_logout(king):
    response = post11(king, "Login", f"<PartnerKey>{KEY}</PartnerKey><Omgevingscode>00000</Omgevingscode>")
    assert response.headers["content-type"].startswith("text/xml")
    session = answer(response, "Login")["SessionId"]
    assert call(king, session, "KeepSession")["KeepSessionResult"] == "true"
    assert call(king, session, "Logout")["LogoutResult"] == "true"
    out = call(king, session, "KeepSession")
    assert out["KeepSessionResult"] == "false" and "Sessie" in out["Foutmelding"]


@pytest.mark.parametrize(
    ("key", "env", "reason"),
    [("wrong-key", "00000", "partnerkey"), (KEY, "99999", "omgevingscode")],
)
def test_login_refused(king, key, env, reason):
    params = f"<PartnerKey>{key}</PartnerKey><Omgevingscode>{env}</Omgevingscode>"
    out = answer(post11(king, "Login", params), "Login")
    assert out["LoginResult"] == "false" and out["SessionId"] == ""
    assert reason in out["Foutmelding"].lower()


def test_faults_for_malformed_unknown_and_miscased_operations(king):
    bad = requests.post(king.king_url, data=b"<soap:Envelope", headers={"Content-Type": "text/xml"})
    assert bad.status_code == 500 and b"faultcode" in bad.content and b"soap:Client" in bad.content
    unknown = post11(king, "Journaliseer", auth("x"))
    assert unknown.status_code == 500 and b"did not recognize" in unknown.content
    miscased = post11(king, "GetStamTabelRecords", auth("x"))
    assert miscased.status_code == 500
    mismatch = post11(king, "Login", "<PartnerKey/>", action="Logout")
    assert mismatch.status_code == 500
    soap12_fault = requests.post(
        king.king_url,
        data=DOC_LOGIN_12.replace("<Login ", "<Inloggen ").replace("</Login>", "</Inloggen>").encode(),
        headers={"Content-Type": "application/soap+xml"},
    )
    assert soap12_fault.status_code == 500 and b"soap:Sender" in soap12_fault.content


def test_entities_and_dtds_are_refused(king):
    evil = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        + SOAP11.format(op="Login", params="<PartnerKey>&e;</PartnerKey>").split("?>", 1)[1]
    )
    response = requests.post(king.king_url, data=evil.encode(), headers={"Content-Type": "text/xml"})
    assert response.status_code == 500 and b"root:" not in response.content


def test_session_idle_timeout_is_configurable(king):
    king.load({"king": {**KING_DEMO, "session_idle_minutes": 0.01}, "qics": {}})
    session = login(king)
    assert call(king, session, "KeepSession")["KeepSessionResult"] == "true"
    time.sleep(0.8)
    out = call(king, session, "KeepSession")
    assert out["KeepSessionResult"] == "false" and "verlopen" in out["Foutmelding"]


def test_a_session_belongs_to_its_environment(king):
    session = login(king, "00000")
    out = call(king, session, "KeepSession", env="31337")
    assert out["KeepSessionResult"] == "false"


# -- reads -----------------------------------------------------------------------------------------


def test_get_adm_info(king):
    session = login(king)
    selection = (
        "<NewDataSet>"
        + table1(TABLE="BASFIN", SELECTFIELDS="AANTPER")
        + table1(TABLE="PERIODEINFO", SELECTFIELDS="JRAFGESL\tPNAFGESL\tJRAFGESLGEBR\tPNAFGESLGEBR")
        + table1(TABLE="BASALG", SELECTFIELDS="NAAM")
        + "</NewDataSet>"
    )
    out = call(king, session, "GetAdmInfo", f"<Selectie>{escape(selection)}</Selectie><Records/>")
    assert out["GetAdmInfoResult"] == "true"
    records = etree.fromstring(out["Records"].encode())
    assert records.findtext("BASFIN/AANTPER") == "12"
    assert records.findtext("PERIODEINFO/JRAFGESLGEBR") == "2026"
    assert records.findtext("PERIODEINFO/PNAFGESLGEBR") == "9"
    assert records.findtext("BASALG/NAAM") == "Adviesbureau Noord B.V."
    bad = call(
        king,
        session,
        "GetAdmInfo",
        f"<Selectie>{escape('<NewDataSet>' + table1(TABLE='XYZ') + '</NewDataSet>')}</Selectie>",
    )
    assert bad["GetAdmInfoResult"] == "false" and bad["Foutmelding"]


def test_select_fields_where_and_value_formats(king):
    session = login(king)
    rows, meta, _ = select(
        king, session, TABLE="DEB", SELECTFIELDS="NR\tNAAM\tBLOK\tLAND", WHEREFIELDS="NR",
        WHEREOPERATORS="=", WHEREVALUES="10003",
    )  # fmt: skip
    assert rows == [{"NR": "10003", "NAAM": rows[0]["NAAM"], "BLOK": "J", "LAND": "NL"}]
    assert meta == {"RECORDCOUNT": 1, "TOTALPAGES": 1}
    # ';'-separated SELECTFIELDS, escaped (not CDATA) selection, money with a decimal comma, dates dd-mm-yyyy
    rows, _, _ = select(
        king, session, cdata=False, TABLE="ART", SELECTFIELDS="NR;VERKPR;BLOK", WHEREFIELDS="NR",
        WHEREOPERATORS="=", WHEREVALUES="ADV",
    )  # fmt: skip
    assert rows == [{"NR": "ADV", "VERKPR": "125,00", "BLOK": "N"}]
    rows, _, _ = select(
        king, session, TABLE="KDR", SELECTFIELDS="*", WHEREFIELDS="NR", WHEREOPERATORS="=", WHEREVALUES="5002"
    )
    assert rows[0]["DATAANVANG"] == "15-04-2026" and rows[0]["OMSCHR"] == "Renovatie & verduurzaming"
    rows, _, _ = select(king, session, TABLE="BTW", SELECTFIELDS="NR;PERC", ORDERBY="NR")
    assert [r["PERC"] for r in rows] == ["0", "21", "9", "0"]


def test_where_operators_and_and_or(king):
    session = login(king)

    def numbers(**row):
        rows, _, out = select(king, session, TABLE="DEB", SELECTFIELDS="NR", ORDERBY="NR", **row)
        assert out["GetStamtabelRecordsResult"] == "true", out
        return [int(r["NR"]) for r in rows]

    assert numbers(WHEREFIELDS="NR", WHEREOPERATORS=">", WHEREVALUES="10009") == [10010, 10011]
    assert numbers(WHEREFIELDS="NR", WHEREOPERATORS="<=", WHEREVALUES="10001") == [10000, 10001]
    assert numbers(WHEREFIELDS="NR\tNR", WHEREOPERATORS=">=\t<", WHEREVALUES="10002\t10004") == [10002, 10003]
    assert numbers(WHEREFIELDS="LAND", WHEREOPERATORS="=", WHEREVALUES="BE") == [10004]
    assert numbers(WHEREFIELDS="BLOK", WHEREOPERATORS="=", WHEREVALUES="J") == [10003]
    antwerp = numbers(WHEREFIELDS="ZKSL;PLAATS", WHEREOPERATORS="LIKE", WHEREVALUES="%antwerp%")
    assert antwerp == [10004]
    everything = numbers(WHEREFIELDS="NAAM", WHEREOPERATORS="LIKE", WHEREVALUES="%")
    assert len(everything) == 12
    _, _, out = select(
        king, session, TABLE="DEB", SELECTFIELDS="NR", WHEREFIELDS="NOPE", WHEREOPERATORS="=", WHEREVALUES="1"
    )
    assert out["GetStamtabelRecordsResult"] == "false" and "NOPE" in out["Foutmelding"]
    _, _, out = select(king, session, TABLE="NOTABLE", SELECTFIELDS="NR")
    assert out["GetStamtabelRecordsResult"] == "false"


@pytest.mark.parametrize("count", [0, 1, 4, 5])
def test_paging_boundaries(king, count):
    fixture = json.loads(json.dumps(KING_DEMO))
    fixture["administrations"][0]["tables"]["DEB"] = fixture["administrations"][0]["tables"]["DEB"][:count]
    king.load({"king": fixture, "qics": {}})
    session = login(king)
    seen, page, pages = [], 1, None
    while True:
        rows, meta, _ = select(
            king, session, TABLE="DEB", SELECTFIELDS="NR", ORDERBY="NR", PAGESIZE=4, SELECTPAGE=page
        )
        pages = meta["TOTALPAGES"]
        assert meta["RECORDCOUNT"] == count
        seen += [r["NR"] for r in rows]
        if page >= pages:
            break
        page += 1
    assert pages == -(-count // 4)
    assert len(seen) == count == len(set(seen))
    rows, meta, _ = select(king, session, TABLE="DEB", SELECTFIELDS="NR", MAXRESULT=2)
    assert len(rows) == min(2, count) and meta["RECORDCOUNT"] == min(2, count)


def test_mutdate_va(king):
    session = login(king)
    for since in ("01-11-2026", "2026-11-01", "20-11-2026 10:00", "2026-11-20 09:59:59"):
        rows, _, _ = select(king, session, TABLE="DEB", SELECTFIELDS="NR", ORDERBY="NR", MUTDATE_VA=since)
        assert [r["NR"] for r in rows] == ["10010", "10011"], since
    rows, _, _ = select(king, session, TABLE="DEB", SELECTFIELDS="NR", MUTDATE_VA="20-11-2026 10:00:01")
    assert rows == []
    rows, _, _ = select(king, session, TABLE="DEB", SELECTFIELDS="NR", MUTDATE_VA="01-01-2026")
    assert len(rows) == 12
    # a write moves the record's change time to now
    mutatie = (
        "<NewDataSet><SELECTION><TABLE>DEB</TABLE><WHEREFIELDS>NR</WHEREFIELDS><WHEREOPERATORS>=</WHEREOPERATORS>"
        "<WHEREVALUES>10000</WHEREVALUES></SELECTION><DATA><EMAIL>nieuw@example.nl</EMAIL></DATA></NewDataSet>"
    )
    assert (
        call(king, session, "UpdateStamtabelRecord", f"<Mutatie><![CDATA[{mutatie}]]></Mutatie>")[
            "UpdateStamtabelRecordResult"
        ]
        == "true"
    )
    rows, _, _ = select(king, session, TABLE="DEB", SELECTFIELDS="NR", ORDERBY="NR", MUTDATE_VA="2026-11-20")
    assert [r["NR"] for r in rows] == ["10000", "10010", "10011"]


# -- writes ----------------------------------------------------------------------------------------


def stamtabel(table: str, **data) -> str:
    fields = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in data.items())
    return f"<NewDataSet><METADATA><TABLE>{table}</TABLE></METADATA><DATA>{fields}</DATA></NewDataSet>"


def test_create_update_delete_stamtabel_record(king):
    session = login(king)
    record = stamtabel("DEB", ZKSL="NIEUWEKLANT", NAAM="Nieuwe Klant & Zn <BV>", KRLIM="1500,5")
    body = f"<Stamtabel><![CDATA[{record}]]></Stamtabel>"
    out = call(king, session, "CreateStamTabelRecord", body + "<Primarykey/>")
    assert out["CreateStamTabelRecordResult"] == "true" and out["Primarykey"] == "10012"
    rows, _, _ = select(
        king,
        session,
        TABLE="DEB",
        SELECTFIELDS="NAAM;KRLIM;BETCOND",
        WHEREFIELDS="NR",
        WHEREOPERATORS="=",
        WHEREVALUES="10012",
    )
    assert rows == [{"NAAM": "Nieuwe Klant & Zn <BV>", "KRLIM": "1500,50", "BETCOND": "1"}]
    again = call(king, session, "CreateStamTabelRecord", body)
    assert again["CreateStamTabelRecordResult"] == "false" and "NIEUWEKLANT" in again["Foutmelding"]
    too_long = call(
        king,
        session,
        "CreateStamTabelRecord",
        f"<Stamtabel>{escape(stamtabel('DEB', ZKSL='X', NAAM='N' * 51))}</Stamtabel>",
    )
    assert too_long["CreateStamTabelRecordResult"] == "false" and "NAAM" in too_long["Foutmelding"]
    bad_ref = call(
        king,
        session,
        "CreateStamTabelRecord",
        f"<Stamtabel>{escape(stamtabel('DEB', ZKSL='Y', BETCOND=9))}</Stamtabel>",
    )
    assert bad_ref["CreateStamTabelRecordResult"] == "false" and "BETCOND" in bad_ref["Foutmelding"]

    sel = (
        "<SELECTION><TABLE>DEB</TABLE><WHEREFIELDS>NR</WHEREFIELDS><WHEREOPERATORS>=</WHEREOPERATORS>"
        "<WHEREVALUES>{}</WHEREVALUES></SELECTION>"
    )
    update = f"<NewDataSet>{sel.format(10012)}<DATA><PLAATS>Utrecht</PLAATS></DATA></NewDataSet>"
    assert (
        call(king, session, "UpdateStamtabelRecord", f"<Mutatie>{escape(update)}</Mutatie>")[
            "UpdateStamtabelRecordResult"
        ]
        == "true"
    )
    missing = f"<NewDataSet>{sel.format(99999)}<DATA><PLAATS>X</PLAATS></DATA></NewDataSet>"
    out = call(king, session, "UpdateStamtabelRecord", f"<Mutatie>{escape(missing)}</Mutatie>")
    assert out["UpdateStamtabelRecordResult"] == "false" and out["Foutmelding"]
    delete = f"<NewDataSet>{sel.format(10012)}</NewDataSet>"
    assert (
        call(king, session, "DeleteStamtabelRecord", f"<Mutatie>{escape(delete)}</Mutatie>")[
            "DeleteStamtabelRecordResult"
        ]
        == "true"
    )
    in_use = f"<NewDataSet>{sel.format(10000)}</NewDataSet>"  # project 5001 refers to it
    out = call(king, session, "DeleteStamtabelRecord", f"<Mutatie>{escape(in_use)}</Mutatie>")
    assert out["DeleteStamtabelRecordResult"] == "false" and "gebruik" in out["Foutmelding"]
    state = king.state("king")["administrations"][0]["tables"]["DEB"]
    assert [r["NR"] for r in state] == list(range(10000, 10012))


def test_create_journaalpost_split_booking_with_pdf_and_read_back(king):
    session = login(king)
    pdf = b"%PDF-1.4 factuur 2026-0042"
    out = create_journaalpost(
        king, session,
        boe(),
        boe(TEGREK=8010, BTW=2, BEDRBOEK="200,00", BEDRBTW="18,00", KPL=200, OMSCHR="Boeken"),
        digdos=[{"FILENAME": "2026-0042.pdf", "FILEDESCRIPTION": "Factuur",
                 "FILE": base64.b64encode(pdf).decode()}],
    )  # fmt: skip
    assert out["CreateJournaalpostResult"] == "true", out
    assert len(out["Primarykey"]) == 2 and out["Primarykey"][0].startswith("70;2026;11;")
    echo = etree.fromstring(out["Journaalpost"].encode())
    assert [el.findtext("RG") for el in echo.findall("BOE")] == [k.split(";")[3] for k in out["Primarykey"]]
    assert echo.findtext("BOE/BEDRBOEK") == "100,00"
    rows, _, _ = select(
        king, session, TABLE="BOE", SELECTFIELDS="DAGB\tJR\tPN\tRG\tREK\tDEB\tTEGREK\tBEDRBOEK\tFACT\tGRPROW",
        WHEREFIELDS="DAGB\tJR\tFACT", WHEREOPERATORS="=\t=\t=", WHEREVALUES="70\t2026\t2026-0042",
        ORDERBY="RG",
    )  # fmt: skip
    assert len(rows) == 2 and rows[0]["GRPROW"] == rows[1]["GRPROW"] and rows[1]["BEDRBOEK"] == "200,00"
    assert rows[0]["DEB"] == "10000"
    # PDF_BESTAND: the linked file comes back as a second table
    row = table1(
        TABLE="BOE", SELECTFIELDS="RG", WHEREFIELDS="FACT", WHEREOPERATORS="=", WHEREVALUES="2026-0042"
    )
    dataset = f"<NewDataSet>{row.replace('</Table1>', '<PDF_BESTAND/></Table1>')}</NewDataSet>"
    out = call(king, session, "GetStamtabelRecords", f"<Selectie>{escape(dataset)}</Selectie>")
    files = etree.fromstring(out["Records"].encode()).findall("PDF_BESTAND")
    assert len(files) == 1 and base64.b64decode(files[0].findtext("FILE")) == pdf


def test_update_journaalpost_attaches_a_file_afterwards(king):
    session = login(king)
    key = create_journaalpost(king, session, boe())["Primarykey"][0]
    digdos = journaalpost(digdos=[{"FILENAME": "f.pdf", "FILE": base64.b64encode(b"%PDF").decode()}])
    out = call(
        king,
        session,
        "UpdateJournaalpost",
        f"<Primarykey>{key}</Primarykey><Journaalpost>{escape(digdos)}</Journaalpost>",
    )
    assert out["UpdateJournaalpostResult"] == "true", out
    assert king.state("king")["administrations"][0]["documents"][0]["FILENAME"] == "f.pdf"
    bad = journaalpost(digdos=[{"FILENAME": "f.pdf", "FILE": "not base64!"}])
    out = call(
        king,
        session,
        "UpdateJournaalpost",
        f"<Primarykey>{key}</Primarykey><Journaalpost>{escape(bad)}</Journaalpost>",
    )
    assert out["UpdateJournaalpostResult"] == "false" and "CS312" in out["Foutmelding"]
    out = call(
        king,
        session,
        "UpdateJournaalpost",
        f"<Primarykey>70;2026;11;999</Primarykey><Journaalpost>{escape(digdos)}</Journaalpost>",
    )
    assert out["UpdateJournaalpostResult"] == "false"


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        ([boe(REK=19999)], ["debiteur", "19999"]),
        ([boe(TEGREK=8999)], ["8999"]),
        ([boe(BTW=7)], ["BTW 7"]),
        ([boe(DAGB=71)], ["dagboek 71"]),
        ([boe(BEDRBTW="20.00")], ["btw-bedrag"]),
        ([boe(), boe(FACT="2026-0043")], ["FACT"]),
        ([boe(), boe(REK=10001)], ["REK"]),
        ([boe(FACT="F" * 21)], ["FACT", "20"]),
        ([boe(OMSCHR="O" * 41)], ["OMSCHR", "40"]),
        ([boe(OPM="x" * 251)], ["OPM", "250"]),
        ([boe(PN=15)], ["periode"]),
        ([boe(DAT=None)], ["DAT"]),
    ],
)
def test_create_journaalpost_rejections(king, rows, words):
    session = login(king)
    out = create_journaalpost(king, session, *rows)
    assert out["CreateJournaalpostResult"] == "false"
    for word in words:
        assert word in out["Foutmelding"], out["Foutmelding"]
    assert king.state("king")["administrations"][0]["tables"]["BOE"] == []


def test_closed_periods_are_not_refused_and_fact_is_numbered(king):
    session = login(king)
    out = create_journaalpost(king, session, boe(JR=2025, PN=3, DAT="15-03-2025", FACT=None, BOEKSTUK=None))
    assert out["CreateJournaalpostResult"] == "true", out
    assert etree.fromstring(out["Journaalpost"].encode()).findtext("BOE/FACT") == "26000101"


# -- faults and the admin API ----------------------------------------------------------------------


def test_fault_switches(king):
    session = login(king)
    king.faults("king", {"kind": "http_503", "count": 1, "operations": ["KeepSession"]})
    assert post11(king, "KeepSession", auth(session)).status_code == 503
    assert call(king, session, "KeepSession")["KeepSessionResult"] == "true"
    king.faults("king", {"kind": "http_500", "count": 1})
    assert post11(king, "KeepSession", auth(session)).status_code == 500
    king.faults("king", {"kind": "http_429", "count": 1, "retry_after": 2})
    limited = post11(king, "KeepSession", auth(session))
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    king.faults("king", {"kind": "latency", "count": 1, "latency_seconds": 0.3})
    started = time.monotonic()
    call(king, session, "KeepSession")
    assert time.monotonic() - started >= 0.3
    king.faults("king", {"kind": "expire_session", "count": 1})
    assert call(king, session, "KeepSession")["KeepSessionResult"] == "false"
    session = login(king)
    king.faults("king", {"kind": "drop_after_commit", "count": 1, "operations": ["CreateJournaalpost"]})
    with pytest.raises(requests.exceptions.RequestException):
        create_journaalpost(king, session, boe())
    assert len(king.state("king")["administrations"][0]["tables"]["BOE"]) == 1  # committed nonetheless
    calls = king.calls("king")
    assert calls["CreateJournaalpost"] == 1 and calls["KeepSession"] >= 6


def test_fixture_round_trip_and_generate(king):
    state = king.state("king")
    king.load({"king": state, "qics": {}})
    assert king.state("king") == state
    assert [a["environment_code"] for a in state["administrations"]] == ["00000", "31337"]
    king.load({"king": {"generate": 250, "seed": 7}, "qics": {}})
    generated = king.state("king")
    assert len(generated["administrations"][0]["tables"]["DEB"]) == 250
    king.load({"king": {"generate": 250, "seed": 7}, "qics": {}})
    second = king.state("king")
    for one, two in zip(
        generated["administrations"][0]["tables"]["DEB"],
        second["administrations"][0]["tables"]["DEB"],
        strict=True,
    ):
        one.pop("_mutdate"), two.pop("_mutdate")
        assert one == two
