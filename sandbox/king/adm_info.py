"""GetAdmInfo's tables as the King emulator knows them: the documented fields (not just what a
fixture happens to hold), and the fiscal periods' dates generated from the administration's period
count and the month its fiscal year starts in."""

from __future__ import annotations

from datetime import date, timedelta

# Documented fields per table (DOC-ADM, DOC-BASFIN; BASALG as a public client asks for it after
# live contact: NAAM NAAM2 ADRES POSTCD PLAATS LAND BTWNR). PERIODEINFO holding the closed-period
# fields is an assumption (the docs name the fields, not their table).
FIELDS = {
    "BASALG": ("NAAM", "NAAM2", "ADRES", "POSTCD", "PLAATS", "LAND", "BTWNR", "ADMNR"),
    "BASFIN": ("AANTPER", "ONDERGRB", "BOVENGRB", "ONDERDEB", "BOVENDEB", "ONDERCRE", "BOVENCRE", "VAL"),
    "PERIODEINFO": ("JR", "PN", "JRAFGESL", "PNAFGESL", "JRAFGESLGEBR", "PNAFGESLGEBR"),
}


def period_dates(periods: int, start_month: int, years: range) -> list[tuple[int, int, date, date]]:
    """(fiscal year, period, first day, last day) for every period of ``years``; the fiscal year is
    named after the calendar year it starts in. 12: months; 4/6/...: equal groups of months; 13:
    twelve periods of four weeks and a thirteenth up to the year's end. Period 14 is not dated."""
    out = []
    for year in years:
        first = date(year, start_month, 1)
        last = date(year + 1, start_month, 1) - timedelta(days=1)
        if periods == 13:
            starts = [first + timedelta(weeks=4 * n) for n in range(13)]
        elif 12 % periods == 0:
            step = 12 // periods
            starts = [_add_months(first, step * n) for n in range(periods)]
        else:
            raise ValueError(f"king fixture: {periods} periods a year are not emulated")
        ends = [s - timedelta(days=1) for s in starts[1:]] + [last]
        out += [(year, n + 1, s, e) for n, (s, e) in enumerate(zip(starts, ends, strict=True))]
    return out


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, 1)
