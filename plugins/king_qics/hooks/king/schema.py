"""King field types: the one registry the hook uses to type columns and serialize values.

Sources: research §4 (official "velden" pages as quoted by public clients). A field not listed here
is read as text. Keys are used to order paged reads so that no record is lost or repeated.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

INT, TEXT, MONEY, DECIMAL, DATE, BOOL = "int", "text", "money", "decimal", "date", "bool"


def _types(spec: str) -> dict[str, str]:
    kinds = {"N": INT, "C": TEXT, "M": MONEY, "P": DECIMAL, "D": DATE, "B": BOOL}
    return {item.split(":")[0]: kinds[item.split(":")[1]] for item in spec.split()}


FIELD_TYPES: dict[str, dict[str, str]] = {
    "DEB": _types(
        "NR:N ZKSL:C NAAM:C NAAM2:C AANHEF:C ADRES:C STRAAT:C HNR:N HNRTV:C POSTCD:C PLAATS:C LAND:C EMAIL:C "
        "TEL:C MOBIEL:C HOMEPAGE:C BTWNR:C BTWPL:C KVKNR:C BETCOND:N SLUITREK:N TEGREK:N KPL:N KDR:N "
        "VAL:C KRLIM:M BLOK:B BLOKDECLVA:D BLOKVRKVA:D MEDEW:C MEDEWDEC:C DECLTOEL:C TAAL:C OPM:C "
        "DATKLANTSINDS:D SALDO:M"
    ),
    "BTW": _types(
        "NR:N ZKSL:C OMSCHR:C PERC:P PERCNW:P DATINGANG:D BTWPL:C GRB:N BLOK:B BLOKDEB:B BLOKCRE:B OPM:C"
    ),
    "BETCOND": _types("NR:N ZKSL:C OMSCHR:C VERVDGN:N PERCBETKORT:P INCASSO:B BLOK:B OPM:C"),
    "ARTGRP": _types("NR:N ZKSL:C OMSCHR:C GRBOMZ:N GRBOMZBINEU:N GRBOMZBUIEU:N BLOK:B"),
    "ART": _types(
        "NR:C ZKSL:C OMSCHR:C ARTGRP:N BTW:C EENHVERK:C VERKPR:M KOSTPR:M BLOK:B BLOKVRK:B BLOKDECL:B "
        "KPL:N KDR:N"
    ),
    "KPL": _types("NR:N ZKSL:C OMSCHR:C BLOK:B NIVO:N"),
    "KDR": _types("NR:N ZKSL:C OMSCHR:C DEB:N MEDEWDEC:C DATAANVANG:D DATGEREED:D BLOK:B KPL:N OPM:C"),
    "MEDEWERKER": _types(
        "ZKSL:C ACHTERNM:C VOORLTRS:C ROEPNM:C TSNVGSL:C EMAIL:C TEL:C MOBIEL:C BLOK:B DATINDIENST:D "
        "DATUITDIENST:D KPL:N PERSNR:N ISVERKOPER:B"
    ),
    "GRB": _types("NR:N ZKSL:C OMSCHR:C BLOK:B BTW:N DC:C KPLVERPL:B KDRVERPL:B"),
    "DAGBOEK": _types("NR:N ZKSL:C OMSCHR:C SRT:C FACT:C BOEKSTUK:C TEGREK:N BLOK:B"),
    "BOE": _types(
        "DAGB:N JR:N PN:N RG:N DAT:D REK:N DEB:N TEGREK:N BTW:N BEDRBOEK:M BEDRBTW:M BEDRINCL:M BOEKSTUK:C "
        "FACT:C DATVERV:D BETWIST:B KPL:N KDR:N OMSCHR:C OPM:C STORNO:B GRPROW:N PRG:C"
    ),
}

KEYS: dict[str, tuple[str, ...]] = {
    "MEDEWERKER": ("ZKSL",),
    "BOE": ("DAGB", "JR", "PN", "RG"),
}
DEFAULT_KEY = ("NR",)


def key_of(table: str) -> tuple[str, ...]:
    return KEYS.get(table.upper(), DEFAULT_KEY)


def field_type(table: str, field: str) -> str:
    return FIELD_TYPES.get(table.upper(), {}).get(field.upper(), TEXT)


def parse_decimal(text: str) -> Decimal:
    """King decimals: ``1234,50`` (comma, as MONEY comes back) or ``1234.50``."""
    text = text.strip()
    if "," in text:
        text = text.replace(".", "").replace(",", ".")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a King number: {text!r}") from None


def parse_date(text: str) -> date:
    text = text.strip()
    for fmt in ("%d-%m-%Y", "%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    return datetime.fromisoformat(text).date()


def parse_value(kind: str, text: str | None):
    """Wire text -> Python value (None for missing/empty non-text)."""
    if text is None:
        return None
    if kind == TEXT:
        return text
    if text.strip() == "":
        return None
    if kind == INT:
        return int(parse_decimal(text))
    if kind in (MONEY, DECIMAL):
        return parse_decimal(text)
    if kind == DATE:
        return parse_date(text)
    if kind == BOOL:
        return text.strip().upper() in ("J", "TRUE", "1", "Y")
    return text


def to_wire(value) -> str:
    """Python value -> request text: dot decimals, dd-mm-yyyy dates, J/N booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "J" if value else "N"
    if isinstance(value, datetime):
        return value.strftime("%d-%m-%Y")
    if isinstance(value, date):
        return value.strftime("%d-%m-%Y")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return format(Decimal(str(value)), "f")
    return str(value)
