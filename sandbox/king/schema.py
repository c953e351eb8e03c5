"""The tables the King emulator knows: fields, types, lengths and keys (research §4).

Types: ``N`` numeric (integer), ``C`` character (with a length), ``M`` money (2 decimals),
``P`` decimal/percentage, ``D`` date, ``B`` boolean (J/N), ``T`` memo (long text).
Values are kept as Python values (int, str, Decimal, date, bool); the wire formats are defined by
:func:`to_wire` and :func:`from_wire` (what the real service does, as far as is known).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation


def _fields(spec: str) -> dict[str, tuple[str, int | None]]:
    """``"NR:N8 ZKSL:C20 BLOK:B"`` -> {"NR": ("N", 8), "ZKSL": ("C", 20), "BLOK": ("B", None)}."""
    out: dict[str, tuple[str, int | None]] = {}
    for item in spec.split():
        name, kind = item.split(":")
        out[name] = (kind[0], int(kind[1:]) if len(kind) > 1 else None)
    return out


TABLES: dict[str, dict] = {
    "DEB": {
        "key": ("NR",),
        "fields": _fields(
            "NR:N8 ZKSL:C20 NAAM:C50 NAAM2:C50 AANHEF:C20 ADRES:C50 STRAAT:C37 HNR:N5 HNRTV:C6 POSTCD:C8 "
            "PLAATS:C24 LAND:C3 EMAIL:C64 TEL:C15 MOBIEL:C15 HOMEPAGE:C64 BTWNR:C14 BTWPL:C1 KVKNR:C15 "
            "BETCOND:N3 SLUITREK:N8 TEGREK:N8 KPL:N8 KDR:N8 VAL:C3 KRLIM:M BLOK:B BLOKDECLVA:D "
            "BLOKVRKVA:D MEDEW:C20 MEDEWDEC:C20 DECLTOEL:C1 TAAL:C3 OPM:T1024 DATKLANTSINDS:D SALDO:M"
        ),
        "readonly": {"SALDO"},
    },
    "BTW": {
        "key": ("NR",),
        "fields": _fields(
            "NR:N2 ZKSL:C20 OMSCHR:C40 PERC:P PERCNW:P DATINGANG:D BTWPL:C1 GRB:N8 BLOK:B BLOKDEB:B "
            "BLOKCRE:B OPM:C250"
        ),
    },
    "BETCOND": {
        "key": ("NR",),
        "fields": _fields("NR:N3 ZKSL:C40 OMSCHR:C40 VERVDGN:N3 PERCBETKORT:P INCASSO:B BLOK:B OPM:C250"),
    },
    "ARTGRP": {
        "key": ("NR",),
        "fields": _fields("NR:N4 ZKSL:C20 OMSCHR:C40 GRBOMZ:N8 GRBOMZBINEU:N8 GRBOMZBUIEU:N8 BLOK:B"),
    },
    "ART": {
        "key": ("NR",),
        "fields": _fields(
            "NR:C20 ZKSL:C20 OMSCHR:C40 ARTGRP:N4 BTW:C1 EENHVERK:C10 VERKPR:M KOSTPR:M BLOK:B BLOKVRK:B "
            "BLOKDECL:B KPL:N8 KDR:N8"
        ),
    },
    "KPL": {"key": ("NR",), "fields": _fields("NR:N8 ZKSL:C20 OMSCHR:C40 BLOK:B NIVO:N2")},
    "KDR": {
        "key": ("NR",),
        "fields": _fields(
            "NR:N8 ZKSL:C20 OMSCHR:C40 DEB:N8 MEDEWDEC:C20 DATAANVANG:D DATGEREED:D BLOK:B KPL:N8 OPM:C250"
        ),
    },
    "MEDEWERKER": {
        "key": ("ZKSL",),
        "fields": _fields(
            "ZKSL:C20 ACHTERNM:C40 VOORLTRS:C20 ROEPNM:C30 TSNVGSL:C15 EMAIL:C64 TEL:C15 MOBIEL:C15 "
            "BLOK:B DATINDIENST:D DATUITDIENST:D KPL:N8 PERSNR:N8 ISVERKOPER:B"
        ),
    },
    "GRB": {
        "key": ("NR",),
        "fields": _fields("NR:N8 ZKSL:C20 OMSCHR:C40 BLOK:B BTW:N2 DC:C1 KPLVERPL:B KDRVERPL:B"),
    },
    "DAGBOEK": {
        "key": ("NR",),
        "fields": _fields("NR:N4 ZKSL:C20 OMSCHR:C40 SRT:C1 FACT:C20 BOEKSTUK:C20 TEGREK:N8 BLOK:B"),
    },
    "BOE": {
        "key": ("DAGB", "JR", "PN", "RG"),
        "fields": _fields(
            "DAGB:N4 JR:N4 PN:N2 RG:N8 DAT:D REK:N8 DEB:N8 TEGREK:N8 BTW:N2 BEDRBOEK:M BEDRBTW:M "
            "BEDRINCL:M BOEKSTUK:C20 FACT:C20 DATVERV:D BETWIST:B KPL:N8 KDR:N8 OMSCHR:C40 OPM:C250 "
            "STORNO:B GRPROW:N8 PRG:C12"
        ),
    },
}

# BOE fields a CreateJournaalpost row may carry (RG, DEB, GRPROW, BEDRINCL, PRG are assigned).
JOURNAL_INPUT_FIELDS = set(TABLES["BOE"]["fields"]) - {"RG", "DEB", "GRPROW", "BEDRINCL", "PRG"}


class ValueProblem(ValueError):
    """A value does not fit its field (text for the Foutmelding)."""


def field_type(table: str, field: str) -> tuple[str, int | None]:
    return TABLES[table]["fields"][field]


_DATE_FORMATS = ("%d-%m-%Y", "%Y-%m-%d", "%d/%m/%Y")


def parse_date(text: str) -> date:
    text = text.strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    try:  # a .NET DataSet DateTime column: 2024-10-07T00:00:00+02:00 (accepted by the real service)
        return datetime.fromisoformat(text).date()
    except ValueError:
        raise ValueProblem(f"'{text}' is geen geldige datum") from None


def parse_decimal(text: str) -> Decimal:
    text = text.strip().replace(" ", "")
    if "," in text:
        text = text.replace(".", "").replace(",", ".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueProblem(f"'{text}' is geen geldig getal") from None
    if not value.is_finite():
        raise ValueProblem(f"'{text}' is geen geldig getal")
    return value


def from_wire(table: str, field: str, text: str | None, *, check_length: bool = True):
    """Wire text (or a fixture value) -> Python value; raises ValueProblem."""
    if text is None:
        return None
    kind, length = field_type(table, field)
    if not isinstance(text, str):  # fixture values may be JSON numbers or booleans
        if kind == "B" and isinstance(text, bool):
            return text
        text = str(text)
    if text.strip() == "" and kind != "C" and kind != "T":
        return None
    if kind == "N":
        try:
            value = int(parse_decimal(text))
        except (ValueProblem, ValueError):
            raise ValueProblem(f"Veld {field}: '{text}' is geen geheel getal") from None
        if length and len(str(abs(value))) > length:
            raise ValueProblem(f"Veld {field}: waarde {value} is te groot (max {length} cijfers)")
        return value
    if kind == "M":
        return parse_decimal(text).quantize(Decimal("0.01"))
    if kind == "P":
        return parse_decimal(text)
    if kind == "D":
        return parse_date(text)
    if kind == "B":
        upper = text.strip().upper()
        if upper in ("J", "TRUE", "1", "Y"):
            return True
        if upper in ("N", "FALSE", "0"):
            return False
        raise ValueProblem(f"Veld {field}: '{text}' is geen J/N")
    if check_length and length and len(text) > length:
        raise ValueProblem(f"Veld {field} is te lang ({len(text)} tekens, maximaal {length})")
    return text


def _decimal_text(value: Decimal, places: int | None) -> str:
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places))
    text = format(value, "f")
    if places is None and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace(".", ",")


def to_wire(table: str, field: str, value) -> str | None:
    """Python value -> the text the real service returns (comma decimals, dd-mm-yyyy, J/N)."""
    if value is None:
        return None
    kind, _ = field_type(table, field)
    if kind == "M":
        return _decimal_text(Decimal(value), 2)
    if kind == "P":
        return _decimal_text(Decimal(value), None)
    if kind == "D":
        return value.strftime("%d-%m-%Y")
    if kind == "B":
        return "J" if value else "N"
    return str(value)


def to_fixture(table: str, field: str, value):
    """Python value -> JSON for state() (same shape a fixture may be written in)."""
    if value is None:
        return None
    kind, _ = field_type(table, field)
    if kind in ("M", "P"):
        return format(Decimal(value), "f")
    if kind == "D":
        return value.isoformat()
    return value


def sort_key(value):
    """Sort None first and keep mixed types from failing."""
    if value is None:
        return (0, 0)
    if isinstance(value, str):
        return (2, value.casefold())
    if isinstance(value, date):
        return (1, value.toordinal())
    return (1, value)


_LIKE_CACHE: dict[str, re.Pattern] = {}


def like(pattern: str, text: str) -> bool:
    regex = _LIKE_CACHE.get(pattern)
    if regex is None:
        regex = re.compile(
            "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern),
            re.IGNORECASE | re.DOTALL,
        )
        _LIKE_CACHE[pattern] = regex
    return regex.fullmatch(text) is not None
