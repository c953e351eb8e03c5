"""Which King booking, if any, already is the booking of an invoice. Pure: the King reads are the
caller's (``KingFinanceHook.find_bookings``).

The rule (docs/invoice_export.md, "Adoption"):
1. A booking that carries this invoice's marker is ours, whatever its FACT (King may renumber it);
   it must still match what we would post (debtor, date, total to the cent), and there may be one.
2. Otherwise a booking with the same FACT (King compares case-insensitively) is adopted only when it
   matches exactly: FACT as we send it, debtor, date and total incl. VAT. A booking that carries the
   marker of another Qics invoice is never ours.
3. Anything that comes close without matching is a near match: a per-invoice failure whose reason
   names the King booking and the difference; never a silent adoption, never a second post.
"""

from __future__ import annotations

from king_qics.hooks.king.bookings import KingBooking
from king_qics.sync.invoices.booking import Booking
from king_qics.sync.invoices.identity import InvoiceError, marker_of


def adoptable(
    expected: Booking, company_id: int, by_marker: list[KingBooking], by_fact: list[KingBooking]
) -> KingBooking | None:
    """The booking King already holds for ``expected`` (adopt it), or None when King has none.
    Raises InvoiceError for a near match or for more than one booking of the invoice."""
    mine = (int(company_id), int(expected.invoice_id))
    ours = {booking.key: booking for booking in by_marker}
    ours.update({b.key: b for b in by_fact if marker_of(b.remark) == mine})
    if len(ours) > 1:
        raise InvoiceError(
            f"King holds {len(ours)} bookings of this invoice ({', '.join(sorted(ours))}); "
            "remove all but one in King, then clear the export task"
        )
    if ours:
        booking = next(iter(ours.values()))
        different = differences(expected, booking, compare_fact=False)
        if different:
            raise InvoiceError(
                f"King booking {booking.key} carries this invoice's marker but differs: "
                f"{near_match(expected, booking, different)}"
            )
        return booking

    exact, near = [], []
    for booking in by_fact:
        other = marker_of(booking.remark)
        if other is not None:  # posted by this program for another Qics invoice
            near.append(
                f"King has FACT {booking.fact} (booking {booking.key}) booked for Qics invoice {other[1]} "
                f"of company {other[0]}; this invoice is {_side(expected, ['FACT'])}"
            )
            continue
        different = differences(expected, booking, compare_fact=True)
        if different:
            near.append(near_match(expected, booking, different))
        else:
            exact.append(booking)
    if len(exact) > 1:
        raise InvoiceError(
            f"King holds {len(exact)} bookings matching this invoice "
            f"({', '.join(b.key for b in exact)}); remove all but one in King, then clear the export task"
        )
    if exact:
        return exact[0]
    if near:
        raise InvoiceError("; ".join(near) + " (not booked: check King, fix or remove the booking there)")
    return None


def differences(expected: Booking, booking: KingBooking, *, compare_fact: bool) -> list[str]:
    """What differs between what we would post and a King booking."""
    different = []
    if compare_fact and booking.fact != expected.fact:
        same_letters = booking.fact.casefold() == expected.fact.casefold()
        different.append("FACT (letter case)" if same_letters else "FACT")  # see _what
    if booking.debtor != expected.debtor:
        different.append("debtor")
    if booking.day != expected.day:
        different.append("date")
    if booking.total != expected.total:
        different.append("total")
    return different


def near_match(expected: Booking, booking: KingBooking, different: list[str]) -> str:
    """ "King has FACT N2026002 on debtor 10000, 12.10 (booking 70;2026;10;5); this invoice is debtor
    10004, 1,731.50: debtor, total differ"."""
    king = f"King has FACT {booking.fact} on {_values(booking.debtor, booking.day, booking.total, different)}"
    return f"{king} (booking {booking.key}); this invoice is {_side(expected, different)}: {_what(different)}"


def _what(different: list[str]) -> str:
    """["FACT (letter case)", "debtor", "total"] ->
    "FACT differs only in letter case; debtor and total differ"."""
    parts = ["FACT differs only in letter case"] if "FACT (letter case)" in different else []
    rest = [name for name in different if name != "FACT (letter case)"]
    if rest:
        names = rest[0] if len(rest) == 1 else f"{', '.join(rest[:-1])} and {rest[-1]}"
        parts.append(f"{names} {'differs' if len(rest) == 1 else 'differ'}")
    return "; ".join(parts)


def _side(expected: Booking, different: list[str]) -> str:
    fact = f"FACT {expected.fact}, " if any(name.startswith("FACT") for name in different) else ""
    return fact + _values(expected.debtor, expected.day, expected.total, different)


def _values(debtor, day, total, different: list[str]) -> str:
    shown_day = f", {day.isoformat() if day else 'no date'}" if "date" in different else ""
    return f"debtor {debtor}{shown_day}, {total:,.2f}"
