"""What the King emulator's operations share: refusals, Foutmelding texts, record (de)serialising."""

from __future__ import annotations

from lxml import etree

from sandbox.king.schema import TABLES, ValueProblem, from_wire, to_wire

# Foutmelding texts (assumptions: no catalogue of the real texts exists, research §2.4).
MSG_BAD_PARTNER_KEY = "Inloggen mislukt: ongeldige partnerkey."
MSG_BAD_ENVIRONMENT = "Inloggen mislukt: ongeldige omgevingscode."
MSG_SESSION_EXPIRED = "Sessie is verlopen of ongeldig. Log opnieuw in."
MSG_BYTES = "Kan een object van het type System.String niet converteren naar het type System.Byte[]. (CS312)"

# field -> referenced table (checked on create/update of master records and on bookings).
REFERENCES = {
    "DEB": {"BETCOND": "BETCOND", "KPL": "KPL", "KDR": "KDR", "MEDEWDEC": "MEDEWERKER"},
    "ART": {"ARTGRP": "ARTGRP", "KPL": "KPL"},  # ART.BTW is a one-letter code, not a BTW.NR
    "KDR": {"DEB": "DEB", "MEDEWDEC": "MEDEWERKER", "KPL": "KPL"},
    "ARTGRP": {"GRBOMZ": "GRB"},
    "BTW": {"GRB": "GRB"},
    "BOE": {"DAGB": "DAGBOEK", "TEGREK": "GRB", "BTW": "BTW", "KPL": "KPL", "KDR": "KDR"},
}


class Refused(Exception):
    """The operation answers Result=false with this Foutmelding."""


def row_text(row: etree._Element, strip: bool = True) -> dict[str, str]:
    out = {}
    for child in row:
        if isinstance(child.tag, str):
            text = child.text or ""
            out[etree.QName(child).localname.upper()] = text.strip() if strip else text.strip("\r\n")
    return out


def split_fields(text: str) -> list[str]:
    return [
        part.strip().upper()
        for part in text.replace(";", "\t").replace(",", "\t").split("\t")
        if part.strip()
    ]


def formatters(table: str, fields: list[str]) -> list[tuple[str, object]]:
    """(field, value -> wire text) per field; plain text and integers need no conversion."""
    out = []
    for name in fields:
        kind = TABLES[table]["fields"][name][0]
        out.append((name, str if kind in ("C", "T", "N") else lambda v, n=name: to_wire(table, n, v)))
    return out


def row_element(tag: str, table: str, record: dict, fields: list[str], field_formats=None) -> etree._Element:
    element = etree.Element(tag)
    for name, fmt in field_formats or formatters(table, fields):
        value = record.get(name)
        if value is not None:
            etree.SubElement(element, name).text = fmt(value)
    return element


def parse_fields(table: str, values: dict[str, str], *, allowed: set[str] | None = None) -> dict:
    fields = TABLES[table]["fields"]
    parsed = {}
    for name, text in values.items():
        if name not in fields or (allowed is not None and name not in allowed):
            raise Refused(f"Veld {name} is onbekend in tabel {table}")
        if name in TABLES[table].get("readonly", ()):
            raise Refused(f"Veld {name} in tabel {table} kan niet worden gewijzigd")
        try:
            parsed[name] = from_wire(table, name, text)
        except ValueProblem as exc:
            raise Refused(str(exc)) from None
    return parsed
