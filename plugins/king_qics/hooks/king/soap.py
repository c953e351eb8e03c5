"""The SOAP of King's ws1_xml.asmx: envelopes, dataset parameters, answers, faults.

Everything is built with lxml (never by concatenating strings) and parsed without DTDs, entity
expansion or network access. How a dataset travels and which SOAP version is spoken is the
connection's King wire profile (king_profile.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from lxml import etree

from king_qics.errors import ProtocolError
from king_qics.hooks.king.schema import to_wire
from king_qics.hooks.safe_xml import parse_xml_safely

NS = "https://cloudswitch.imuisonline.com/"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
XS = "http://www.w3.org/2001/XMLSchema"
MSDATA = "urn:schemas-microsoft-com:xml-msdata"
# SOAP Fault codes that say the request itself is wrong (retrying cannot help).
CLIENT_FAULT_CODES = ("Client", "Sender")
# Columns a typed dataset declares as binary (base64Binary); every other column is a string.
BINARY_COLUMNS = {"DIGDOS": {"FILE"}}


class Dataset(str):
    """A dataset parameter's XML (``<NewDataSet>...``): sent as a string, CDATA or escaped."""


def parse_xml(data: bytes | str, what: str) -> etree._Element:
    """Parse an answer of King safely (no DTD, no entities, no network)."""
    return parse_xml_safely(data, f"King {what}")


def dataset(rows: Iterable[tuple[str, dict[str, Any]]], *, typed: bool = False) -> Dataset:
    """``<NewDataSet><T1><F>v</F>...</T1>...</NewDataSet>`` (values escaped by lxml). ``typed``:
    with an inline XSD first, as a .NET DataSet writes itself with its schema, so that binary
    columns (``BINARY_COLUMNS``) are declared base64Binary."""
    rows = [(tag, {name: v for name, v in values.items() if v is not None}) for tag, values in rows]
    root = etree.Element("NewDataSet")
    if typed:
        root.append(_schema(rows))
    for tag, values in rows:
        row = etree.SubElement(root, tag)
        for name, value in values.items():
            etree.SubElement(row, name).text = to_wire(value)
    return Dataset(etree.tostring(root, encoding="unicode"))


def _schema(rows: list[tuple[str, dict[str, Any]]]) -> etree._Element:
    columns: dict[str, list[str]] = {}
    for tag, values in rows:
        known = columns.setdefault(tag, [])
        known.extend(name for name in values if name not in known)
    xs = f"{{{XS}}}"
    schema = etree.Element(xs + "schema", {"id": "NewDataSet"}, nsmap={"xs": XS, "msdata": MSDATA})
    top = etree.SubElement(
        schema,
        xs + "element",
        {"name": "NewDataSet", f"{{{MSDATA}}}IsDataSet": "true", f"{{{MSDATA}}}UseCurrentLocale": "true"},
    )
    choice = etree.SubElement(
        etree.SubElement(top, xs + "complexType"), xs + "choice", {"minOccurs": "0", "maxOccurs": "unbounded"}
    )
    for tag, names in columns.items():
        table = etree.SubElement(choice, xs + "element", {"name": tag})
        sequence = etree.SubElement(etree.SubElement(table, xs + "complexType"), xs + "sequence")
        for name in names:
            kind = "xs:base64Binary" if name in BINARY_COLUMNS.get(tag, ()) else "xs:string"
            etree.SubElement(sequence, xs + "element", {"name": name, "type": kind, "minOccurs": "0"})
    return schema


def envelope(
    operation: str, params: Sequence[tuple[str, Any]], *, soap_version: str, dataset_encoding: str
) -> tuple[bytes, dict]:
    """The request body and headers of one operation."""
    soap_ns = SOAP12 if soap_version == "1.2" else SOAP11
    root = etree.Element(f"{{{soap_ns}}}Envelope", nsmap={"soap": soap_ns})
    body = etree.SubElement(root, f"{{{soap_ns}}}Body")
    call = etree.SubElement(body, f"{{{NS}}}{operation}", nsmap={None: NS})
    for name, value in params:
        element = etree.SubElement(call, f"{{{NS}}}{name}")
        if isinstance(value, list):
            for item in value:
                etree.SubElement(element, f"{{{NS}}}string").text = str(item)
        elif isinstance(value, Dataset) and dataset_encoding == "cdata":
            element.text = etree.CDATA(value)  # lxml wrote it: it holds no "]]>"
        elif value is not None:
            element.text = str(value)
    data = etree.tostring(root, xml_declaration=True, encoding="utf-8")
    action = NS + operation
    if soap_ns == SOAP12:
        headers = {"Content-Type": f'application/soap+xml; charset=utf-8; action="{action}"'}
    else:
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action}"'}
    return data, headers


def read_answer(content: bytes, operation: str) -> dict:
    """``<XxxResponse>`` -> {"Result": bool, "Foutmelding": str, <output>: str | list[str]}."""
    root = parse_xml(content, operation)
    answer = next((el for el in root.iter(f"{{{NS}}}{operation}Response")), None)
    if answer is None:
        raise ProtocolError(f"King {operation}: no {operation}Response in the answer")
    out: dict[str, Any] = {}
    for child in answer:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        strings = [
            s.text or "" for s in child if isinstance(s.tag, str) and etree.QName(s).localname == "string"
        ]
        out[name] = strings if strings else (child.text or "")
    result = str(out.pop(f"{operation}Result", "")).strip().lower()
    if result not in ("true", "false"):
        raise ProtocolError(f"King {operation}: no {operation}Result in the answer")
    out["Result"] = result == "true"
    out["Foutmelding"] = str(out.get("Foutmelding") or "").strip()
    return out


def client_fault(content: bytes) -> str | None:
    """The text of a SOAP Fault whose code says the request is wrong, else None."""
    try:
        root = parse_xml(content, "fault")
    except ProtocolError:
        return None
    fault = next(
        (el for el in root.iter() if isinstance(el.tag, str) and etree.QName(el).localname == "Fault"), None
    )
    if fault is None:
        return None
    texts = {
        etree.QName(el).localname: (el.text or "").strip() for el in fault.iter() if isinstance(el.tag, str)
    }
    code = texts.get("faultcode") or texts.get("Value") or ""
    if code.rpartition(":")[2] not in CLIENT_FAULT_CODES:
        return None
    return (texts.get("faultstring") or texts.get("Text") or "SOAP Fault")[:300]


def primary_key(value: Any) -> str | None:
    """CreateJournaalpost's Primarykey as ``DAGB;JR;PN;RG``, or None when it is not recognisable.

    Its format is not documented (an ArrayOfString per the WSDL): one key per row, separated by
    ``;``, ``,``, ``/`` or ``|``; anything else is left to the echoed rows or a read-back."""
    from king_qics.hooks.king.bookings import booking_key

    first = value[0] if isinstance(value, list) and value else value
    parts = re.split(r"[;,/|]", str(first or "").strip())
    if len(parts) != 4 or not all(re.fullmatch(r"\d+", part.strip()) for part in parts):
        return None
    return booking_key(*parts)


def row_texts(element: etree._Element) -> dict[str, str]:
    return {child.tag: child.text or "" for child in element if isinstance(child.tag, str)}
