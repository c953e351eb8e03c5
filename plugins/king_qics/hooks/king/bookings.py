"""King bookings as the hook returns them: a posted booking, and bookings read back from BOE (one
record per booking, its split rows summed), typed from the wire texts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from king_qics.hooks.king.schema import DATE, INT, MONEY, TEXT, parse_value

# BOE fields a look-up reads (plus the profile's marker field)
BOOKING_FIELDS = ("DAGB", "JR", "PN", "RG", "GRPROW", "FACT", "REK", "DEB", "DAT", "BEDRBOEK", "BEDRBTW")
_TYPES = {"FACT": TEXT, "DAT": DATE, "BEDRBOEK": MONEY, "BEDRBTW": MONEY}


@dataclass(frozen=True)
class PostedBooking:
    """What CreateJournaalpost answered: the booking key and the FACT King echoed (None: no echo)."""

    key: str
    fact: str | None
    answered_key: str | None = None  # CreateJournaalpost's Primarykey as King gave it (format unknown)


@dataclass(frozen=True)
class KingBooking:
    """One booking in King (all rows of one GRPROW)."""

    key: str  # DAGB;JR;PN;RG of its first row
    fact: str
    debtor: int | None  # DEB (sales journals), else REK
    day: date | None
    net: Decimal
    vat: Decimal  # with the sign of the net amount
    remark: str  # the marker field's text
    rows: int

    @property
    def total(self) -> Decimal:
        return self.net + self.vat


def booking_key(dagb: Any, jr: Any, pn: Any, rg: Any) -> str:
    """The hook's booking key: ``DAGB;JR;PN;RG`` of the booking's first row (as King's Primarykey)."""
    return ";".join(str(int(Decimal(str(part)))) for part in (dagb, jr, pn, rg))


def group_bookings(rows: list[dict[str, str]], marker_field: str) -> list[KingBooking]:
    """BOE rows (wire texts) -> one KingBooking per GRPROW, in the order the rows came."""
    groups: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        group = row.get("GRPROW") or booking_key(row["DAGB"], row["JR"], row["PN"], row["RG"])
        groups.setdefault(group, []).append(row)
    return [_booking(members, marker_field) for members in groups.values()]


def _value(row: dict[str, str], name: str):
    return parse_value(_TYPES.get(name, INT), row.get(name))


def _booking(rows: list[dict[str, str]], marker_field: str) -> KingBooking:
    first = rows[0]
    net = vat = Decimal(0)
    for row in rows:
        row_net = _value(row, "BEDRBOEK") or Decimal(0)
        row_vat = _value(row, "BEDRBTW") or Decimal(0)
        if row_net and row_vat and (row_net < 0) != (row_vat < 0):  # VAT booked with the other sign
            row_vat = -row_vat
        net, vat = net + row_net, vat + row_vat
    debtor = _value(first, "DEB") if first.get("DEB") not in (None, "") else _value(first, "REK")
    return KingBooking(
        key=booking_key(first["DAGB"], first["JR"], first["PN"], first["RG"]),
        fact=first.get("FACT") or "",
        debtor=debtor,
        day=_value(first, "DAT"),
        net=net,
        vat=vat,
        remark=first.get(marker_field) or "",
        rows=len(rows),
    )
