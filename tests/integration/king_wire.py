"""Raw SOAP for the King emulator's own tests: hand-written requests as the working clients send
them (research notes B.1), so the emulator is tested against the wire, not against our hook."""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import escape

import requests
from lxml import etree

ROOT = Path(__file__).resolve().parents[2]
KING_DEMO = json.loads((ROOT / "sandbox" / "fixtures" / "demo.json").read_text(encoding="utf-8"))["king"]
NS = "https://cloudswitch.imuisonline.com/"
KEY = "abcdefghijklmnopqrstuvwxyz"


# The SOAP 1.2 Login request of the vendor documentation (DOC-LOGIN), byte for byte in shape.
DOC_LOGIN_12 = """<?xml version="1.0" encoding="utf-8"?>
<soap12:Envelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:soap12="http://www.w3.org/2003/05/soap-envelope">
  <soap12:Body>
    <Login xmlns="https://cloudswitch.imuisonline.com/">
      <PartnerKey>{key}</PartnerKey>
      <Omgevingscode>{env}</Omgevingscode>
      <SessionId></SessionId>
      <Foutmelding></Foutmelding>
    </Login>
  </soap12:Body>
</soap12:Envelope>"""

SOAP11 = """<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<{op} xmlns="https://cloudswitch.imuisonline.com/">{params}</{op}></soap:Body></soap:Envelope>"""


def post11(king, op: str, params: str, action: str | None = None) -> requests.Response:
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS}{action or op}"'}
    return requests.post(king.king_url, data=SOAP11.format(op=op, params=params).encode(), headers=headers)


def answer(response: requests.Response, op: str) -> dict:
    assert response.status_code == 200, response.text
    root = etree.fromstring(response.content)
    node = root.find(f".//{{{NS}}}{op}Response")
    out = {}
    for child in node:
        name = etree.QName(child).localname
        strings = child.findall(f"{{{NS}}}string")
        out[name] = [s.text for s in strings] if strings else (child.text or "")
    return out


def login(king, env: str = "00000") -> str:
    params = f"<PartnerKey>{KEY}</PartnerKey><Omgevingscode>{env}</Omgevingscode><SessionId/><Foutmelding/>"
    out = answer(post11(king, "Login", params), "Login")
    assert out["LoginResult"] == "true", out
    return out["SessionId"]


def auth(session: str, env: str = "00000") -> str:
    return (
        f"<PartnerKey>{KEY}</PartnerKey><Omgevingscode>{env}</Omgevingscode>"
        f"<SessionId>{escape(session)}</SessionId>"
    )


def call(king, session: str, op: str, body: str = "", env: str = "00000") -> dict:
    return answer(post11(king, op, auth(session, env) + body + "<Foutmelding/>"), op)


ROW_TAGS = ("TABLE", "SELECTFIELDS", "WHEREFIELDS", "WHEREOPERATORS", "WHEREVALUES", "MUTDATE_VA", "ORDERBY")


def table1(**row) -> str:
    """A selection row as the working clients send it: WHERE* and ORDERBY always there (empty when
    unused), the tags in their order, then whatever else is given."""
    full = {tag: row.pop(tag, "") for tag in ROW_TAGS if tag in row or tag not in ("MUTDATE_VA",)}
    full.update(row)
    return "<Table1>" + "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in full.items()) + "</Table1>"


def select(
    king, session: str, cdata: bool = True, env: str = "00000", **row
) -> tuple[list[dict], dict, dict]:
    dataset = f"<NewDataSet>{table1(**row)}</NewDataSet>"
    param = f"<![CDATA[{dataset}]]>" if cdata else escape(dataset)
    out = call(king, session, "GetStamtabelRecords", f"<Selectie>{param}</Selectie><Records/>", env)
    if out["GetStamtabelRecordsResult"] != "true":
        return [], {}, out
    records = etree.fromstring(out["Records"].encode())
    rows = [{c.tag: c.text or "" for c in el} for el in records.findall("DATA")]
    meta = {c.tag: int(c.text) for c in records.find("METADATA")}
    return rows, meta, out


def boe(**overrides) -> dict:
    row = {
        "DAGB": 70, "JR": 2026, "PN": 11, "DAT": "25-11-2026", "REK": 10000, "TEGREK": 8000, "BTW": 1,
        "BEDRBOEK": "100.00", "BEDRBTW": "21.00", "FACT": "2026-0042", "BOEKSTUK": "2026-0042",
        "OMSCHR": "Advies november", "KPL": 100,
    }  # fmt: skip
    row.update(overrides)
    return {k: v for k, v in row.items() if v is not None}


FILE_SCHEMA = (  # an inline XSD declaring DIGDOS.FILE binary, as a .NET DataSet writes it
    '<xs:schema id="NewDataSet" xmlns:xs="http://www.w3.org/2001/XMLSchema" '
    'xmlns:msdata="urn:schemas-microsoft-com:xml-msdata">'
    '<xs:element name="NewDataSet" msdata:IsDataSet="true">'
    '<xs:complexType><xs:choice minOccurs="0" maxOccurs="unbounded">'
    '<xs:element name="DIGDOS"><xs:complexType>'
    '<xs:sequence><xs:element name="FILENAME" type="xs:string" minOccurs="0"/>'
    '<xs:element name="FILE" type="xs:base64Binary" minOccurs="0"/></xs:sequence></xs:complexType>'
    "</xs:element></xs:choice></xs:complexType></xs:element></xs:schema>"
)


def journaalpost(*rows: dict, digdos: list[dict] | None = None, typed: bool = True) -> str:
    parts = ["<NewDataSet>", FILE_SCHEMA if digdos and typed else ""]
    for tag, items in (("BOE", rows), ("DIGDOS", digdos or [])):
        for row in items:
            parts.append(
                f"<{tag}>" + "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in row.items()) + f"</{tag}>"
            )
    parts.append("</NewDataSet>")
    return "".join(parts)


def create_journaalpost(king, session, *rows, digdos=None) -> dict:
    body = f"<Journaalpost><![CDATA[{journaalpost(*rows, digdos=digdos)}]]></Journaalpost><Primarykey/>"
    return call(king, session, "CreateJournaalpost", body)
