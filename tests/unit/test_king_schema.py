"""King value formats and SOAP envelopes, without a server."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from lxml import etree

from king_qics.errors import ProtocolError
from king_qics.hooks.king import schema as ks
from king_qics.hooks.king.bookings import booking_key
from king_qics.hooks.king.soap import Dataset, dataset, envelope, parse_xml


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        (ks.MONEY, "1234,50", Decimal("1234.50")),
        (ks.MONEY, "1.234,50", Decimal("1234.50")),
        (ks.MONEY, "-21", Decimal("-21")),
        (ks.MONEY, "100.0", Decimal("100.0")),
        (ks.INT, "10000", 10000),
        (ks.INT, "", None),
        (ks.DATE, "25-11-2026", date(2026, 11, 25)),
        (ks.DATE, "2026-11-25", date(2026, 11, 25)),
        (ks.DATE, "2024-10-07T00:00:00+02:00", date(2024, 10, 7)),
        (ks.BOOL, "J", True),
        (ks.BOOL, "N", False),
        (ks.TEXT, "", ""),
        (ks.TEXT, None, None),
    ],
)
def test_parse_value(kind, text, value):
    assert ks.parse_value(kind, text) == value


def test_to_wire():
    assert ks.to_wire(Decimal("1234.50")) == "1234.50"
    assert ks.to_wire(Decimal("1E+2")) == "100"
    assert ks.to_wire(date(2026, 1, 5)) == "05-01-2026"
    assert ks.to_wire(datetime(2026, 1, 5, 13, 0)) == "05-01-2026"
    assert ks.to_wire(True) == "J" and ks.to_wire(False) == "N"
    assert ks.to_wire(0.1) == "0.1"


def test_registry_and_keys():
    assert ks.field_type("deb", "krlim") == ks.MONEY
    assert ks.field_type("DEB", "UNKNOWN") == ks.TEXT
    assert ks.key_of("BOE") == ("DAGB", "JR", "PN", "RG") and ks.key_of("MEDEWERKER") == ("ZKSL",)


def test_dataset_escapes_every_value():
    text = dataset([("DATA", {"NAAM": "a<b>&]]>", "NR": 1, "SKIP": None})])
    assert text == "<NewDataSet><DATA><NAAM>a&lt;b&gt;&amp;]]&gt;</NAAM><NR>1</NR></DATA></NewDataSet>"


def test_parse_xml_refuses_dtds_and_garbage():
    with pytest.raises(ProtocolError):
        parse_xml(b'<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>', "test")
    with pytest.raises(ProtocolError):
        parse_xml(b"<x>", "test")


def test_envelope_shapes():
    body, headers = envelope(
        "GetStamtabelRecords",
        [("SessionId", "1/2@d3;CSW"), ("Selectie", Dataset("<a>&amp;</a>"))],
        soap_version="1.1",
        dataset_encoding="cdata",
    )
    assert headers["SOAPAction"] == '"https://cloudswitch.imuisonline.com/GetStamtabelRecords"'
    assert b"<![CDATA[<a>&amp;</a>]]>" in body  # a dataset travels as a string, as the live clients send it
    root = etree.fromstring(body)
    assert root.findtext(".//{https://cloudswitch.imuisonline.com/}Selectie") == "<a>&amp;</a>"
    body, _ = envelope("X", [("Selectie", Dataset("<a/>"))], soap_version="1.1", dataset_encoding="escaped")
    assert b"&lt;a/&gt;" in body
    _, headers = envelope("Login", [], soap_version="1.2", dataset_encoding="cdata")
    assert (
        headers["Content-Type"].startswith("application/soap+xml") and 'action="' in headers["Content-Type"]
    )


def test_a_typed_dataset_declares_the_file_binary():
    text = dataset([("DIGDOS", {"FILENAME": "f.pdf", "FILE": "JVBERi0="})], typed=True)
    root = etree.fromstring(text)
    xs = "{http://www.w3.org/2001/XMLSchema}"
    columns = {e.get("name"): e.get("type") for e in root.iter(f"{xs}element") if e.get("type")}
    assert columns == {"FILENAME": "xs:string", "FILE": "xs:base64Binary"}
    assert root[1].tag == "DIGDOS" and root[1].findtext("FILE") == "JVBERi0="


def test_booking_key():
    assert booking_key("70", 2026, "11", "5") == "70;2026;11;5"
