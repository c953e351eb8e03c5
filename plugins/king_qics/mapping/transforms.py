"""The named transforms and rules a mapping YAML may use (docs/mapping.md lists them all).

Every function works on a whole column (a pandas Series aligned with the King frame) and returns
``(values, errors)``: ``values`` an object Series (None where empty), ``errors`` None or an object
Series holding a reason (without the Qics field name) for the rows that cannot be mapped, None
elsewhere. A row with any reason is not synced; the others are unaffected.

Transforms take the column of their ``source`` (``join`` takes several columns); rules read the
King fields they declare (names.py: ``RULE_FIELDS``) and the administration's defaults.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from king_qics.mapping.columns import (
    Context,
    Result,
    blank,
    combine_errors,
    errors_where,
    finalize,
    keep,
    missing,
    on_text,
    text,
    text_scalar,
)
from king_qics.mapping.files import data_file
from king_qics.mapping.names import MULTI_COLUMN_TRANSFORMS, RULE_FIELDS, TRANSFORMS_WITH_ARGUMENT

__all__ = ["MULTI_COLUMN_TRANSFORMS", "RULES", "TRANSFORMS", "TRANSFORMS_WITH_ARGUMENT"]

# Deliberately simple and strict: one address, local@domain.tld, no spaces, no display names.
EMAIL_PATTERN = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}"  # noqa: E501
TRUE_WORDS = {"J", "JA", "Y", "YES", "TRUE", "1", "T"}
FALSE_WORDS = {"N", "NEE", "NO", "FALSE", "0", "F"}
HOUR_UNITS = {"uur", "uren", "u"}
ADDRESS_SEPARATORS = re.compile(r"[;,]")


# -- transforms -------------------------------------------------------------------------------


def t_str(values: pd.Series, ctx: Context, arg: str | None) -> Result:
    return text(values), None


def t_strip(values: pd.Series, ctx: Context, arg: str | None) -> Result:
    out = text(values)
    stripped = on_text(out, lambda t: t.strip())
    return keep(stripped, ~missing(stripped)), None


def t_upper(values: pd.Series, ctx: Context, arg: str | None) -> Result:
    out = text(values)
    return on_text(out, lambda t: t.upper()), None


def t_lower(values: pd.Series, ctx: Context, arg: str | None) -> Result:
    out = text(values)
    return on_text(out, lambda t: t.lower()), None


def t_truncate(values: pd.Series, ctx: Context, arg: str | None) -> Result:
    length = int(arg or 0)
    out = text(values)
    return on_text(out, lambda t: t.slice(0, length)), None


def t_int(values: pd.Series, ctx: Context, arg: str | None) -> Result:
    empty = missing(values)
    as_text = text(values)
    numbers = pd.to_numeric(keep(as_text, ~empty), errors="coerce")
    bad = ~empty & (numbers.isna() | (numbers != np.floor(numbers.fillna(0))))
    out = finalize(numbers.where(~bad).astype("Float64").round(0).astype("Int64"))
    errors = errors_where(bad, "'" + as_text.astype(str) + "' is not a whole number")
    return keep(out, ~empty & ~bad), errors


def _decimal(value: Any) -> Any:
    try:
        number = (
            value if isinstance(value, Decimal) else Decimal(text_scalar(value).strip().replace(",", "."))
        )
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def t_decimal(values: pd.Series, ctx: Context, arg: str | None) -> Result:
    empty = missing(values)
    out = keep(values.astype(object), ~empty).map(_decimal, na_action="ignore")
    bad = ~empty & out.isna()
    return keep(out, ~bad), errors_where(bad, "'" + text(values).astype(str) + "' is not a number")


def t_percentage(values: pd.Series, ctx: Context, arg: str | None) -> Result:
    """A decimal from 0 to 100 (a VAT percentage outside that range is a data error in King)."""
    out, errors = t_decimal(values, ctx, arg)
    numbers = out.where(out.notna(), Decimal(0))
    bad = out.notna() & ((numbers < 0) | (numbers > 100))
    range_errors = errors_where(bad, "'" + text(values).astype(str) + "' is not a percentage from 0 to 100")
    return keep(out, ~bad), combine_errors(errors, range_errors)


def _as_bool(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(booleans with None, empty mask, invalid mask) for bool or J/N values."""
    empty = missing(values)
    words = keep(text(values), ~empty)
    words = on_text(words, lambda t: t.strip().str.upper())
    true = words.isin(TRUE_WORDS)
    false = words.isin(FALSE_WORDS)
    out = blank(values.index)
    out[true] = True
    out[false] = False
    return out, empty, ~empty & ~true & ~false


def t_bool(values: pd.Series, ctx: Context, arg: str | None) -> Result:
    out, _, bad = _as_bool(values)
    return out, errors_where(bad, "'" + text(values).astype(str) + "' is not J/N")


def t_not_blocked(values: pd.Series, ctx: Context, arg: str | None) -> Result:
    """IsActive from King's BLOK flag: active unless blocked (empty BLOK = not blocked)."""
    blocked, empty, bad = _as_bool(values)
    out = blank(values.index)
    out[:] = True
    out[blocked.eq(True)] = False
    return out, errors_where(bad, "BLOK '" + text(values).astype(str) + "' is not J/N")


def countries() -> tuple[dict[str, str], dict[str, str]]:
    """(any accepted King code -> ISO alpha-2, ISO alpha-2 -> Dutch name), from countries.yaml."""
    path = data_file("countries.yaml")
    return _countries(path, path.stat().st_mtime_ns)


@cache
def _countries(path: Path, _mtime: int) -> tuple[dict[str, str], dict[str, str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    codes, names = {}, {}
    for iso, entry in data.items():
        names[iso] = entry["name"]
        codes[iso] = iso
        for alias in entry.get("aliases") or []:
            codes[str(alias).upper()] = iso
    return codes, names


def _iso_country(values: pd.Series, ctx: Context) -> Result:
    codes, _ = countries()
    empty = missing(values)
    given = keep(text(values), ~empty)
    given = on_text(given, lambda t: t.strip().str.upper())
    iso = given.map(codes)
    default = str(ctx.config("defaults.country_code")).upper()
    iso = iso.where(~empty, codes.get(default, default))
    bad = ~empty & iso.isna()
    errors = errors_where(
        bad, "King LAND '" + given.astype(str) + "' is not a known country (countries.yaml)"
    )
    return keep(iso, ~bad), errors


def t_country_code(values: pd.Series, ctx: Context, arg: str | None) -> Result:
    return _iso_country(values, ctx)


def t_country_name(values: pd.Series, ctx: Context, arg: str | None) -> Result:
    iso, errors = _iso_country(values, ctx)
    _, names = countries()
    return keep(iso.map(names), iso.notna()), errors


def t_email(values: pd.Series, ctx: Context, arg: str | None) -> Result:
    """One e-mail address, validated; an invalid address fails the record (never silently dropped)."""
    out, _ = t_strip(values, ctx, None)
    present = out.notna()
    valid = out.where(present, "").astype(str).str.fullmatch(EMAIL_PATTERN)
    bad = present & ~valid
    return keep(out, ~bad), errors_where(bad, "'" + out.astype(str) + "' is not a valid e-mail address")


def _addresses(text: str) -> tuple[str | None, str | None, str | None]:
    """(first address, error, warning) of a text holding addresses separated by ';' or ','."""
    found = [part for part in (p.strip() for p in ADDRESS_SEPARATORS.split(text)) if part]
    invalid = [address for address in found if not re.fullmatch(EMAIL_PATTERN, address)]
    if invalid:
        return None, f"'{text}' holds an invalid e-mail address ({invalid[0]!r})", None
    if len(found) < 2:
        return (found[0] if found else None), None, None
    warning = (
        f"{len(found)} e-mail addresses ({'; '.join(found)}): only the first, {found[0]}, is synced"
        " (Qics takes one address per field)"
    )
    return found[0], None, warning


def t_first_email(values: pd.Series, ctx: Context, arg: str | None) -> Result:
    """The first of the e-mail addresses a King field holds, separated by ';' or ',' (a common King
    setup: "facturen@x.nl; administratie@x.nl"). Every address must be valid, else the record fails;
    with several, the record is synced with the first and the task log says so (a warning)."""
    out, _ = t_strip(values, ctx, None)
    present = out.notna()
    several = present & out.where(present, "").astype(str).str.contains(r"[;,]", regex=True)
    first, errors = t_email(keep(out, ~several), ctx, None)  # one address: as the email transform
    if not several.any():
        return first, errors
    parsed = out[several].map(_addresses)
    errors = errors if errors is not None else blank(values.index)
    warnings = blank(values.index)
    for position, (address, error, warning) in parsed.items():
        first[position], errors[position], warnings[position] = address, error, warning
    ctx.warn(warnings.notna(), warnings)
    return first, errors if errors.notna().any() else None


def t_date(values: pd.Series, ctx: Context, arg: str | None) -> Result:
    """A date as ISO text 'YYYY-MM-DD' (from date, datetime or text)."""
    empty = missing(values)
    parsed = pd.to_datetime(keep(values, ~empty), errors="coerce", format="mixed")
    bad = ~empty & parsed.isna()
    out = keep(parsed.dt.strftime("%Y-%m-%d"), ~empty & ~bad)
    return out, errors_where(bad, "'" + text(values).astype(str) + "' is not a date")


def t_join(values: pd.Series | pd.DataFrame, ctx: Context, arg: str | None) -> Result:
    """Several King fields into one text, the non-empty parts separated by a space
    (STRAAT + HNR + HNRTV -> 'Hoofdstraat 12 A')."""
    frame = values.to_frame() if isinstance(values, pd.Series) else values
    parts = []
    for column in frame.columns:
        part, _ = t_strip(frame[column], ctx, None)
        parts.append(part.fillna(""))
    joined = parts[0].astype(str)
    for part in parts[1:]:
        joined = joined.str.cat(part.astype(str), sep=" ")
    joined = joined.str.split().str.join(" ")
    return keep(joined, joined != ""), None


TRANSFORMS: dict[str, Callable[..., Result]] = {
    "str": t_str,
    "strip": t_strip,
    "upper": t_upper,
    "lower": t_lower,
    "truncate": t_truncate,  # truncate:N
    "int": t_int,
    "decimal": t_decimal,
    "percentage": t_percentage,
    "bool": t_bool,
    "j_n_to_bool": t_bool,
    "not_blocked": t_not_blocked,
    "country_code": t_country_code,
    "country_name": t_country_name,
    "email": t_email,
    "first_email": t_first_email,
    "date": t_date,
    "join": t_join,
}


# -- rules ------------------------------------------------------------------------------------


def _column(ctx: Context, name: str) -> pd.Series:
    return ctx.frame[name] if name in ctx.frame else blank(ctx.frame.index)


def _is_hour_unit(ctx: Context) -> pd.Series:
    unit, _ = t_strip(_column(ctx, "EENHVERK"), ctx, None)
    return unit.where(unit.notna(), "").astype(str).str.lower().isin(HOUR_UNITS)


def r_reverse_charge(ctx: Context) -> Result:
    """ReverseCharge: the VAT code's kind BTWPL is 'V' (verlegd), or its description says 'verlegd'."""
    kind, _ = t_strip(_column(ctx, "BTWPL"), ctx, None)
    name, _ = t_strip(_column(ctx, "OMSCHR"), ctx, None)
    verlegd = kind.where(kind.notna(), "").astype(str).str.upper().eq("V") | name.where(
        name.notna(), ""
    ).astype(str).str.contains("verlegd", case=False, regex=False)
    return verlegd.astype(object), None


def r_item_type(ctx: Context) -> Result:
    """ItemType: 'Hour' for articles sold per hour (EENHVERK 'uur'), else defaults.item_type."""
    hour = _is_hour_unit(ctx)
    out = pd.Series(ctx.config("defaults.item_type"), index=ctx.frame.index, dtype=object)
    out[hour] = "Hour"
    return out, None


def r_allow_time_entry(ctx: Context) -> Result:
    """AllowTimeEntry: true for articles sold per hour, else defaults.allow_time_entry."""
    hour = _is_hour_unit(ctx)
    out = pd.Series(bool(ctx.config("defaults.allow_time_entry")), index=ctx.frame.index, dtype=object)
    out[hour] = True
    return out, None


def r_employee_active(ctx: Context) -> Result:
    """IsActive of an employee: not blocked (BLOK) and not out of service (DATUITDIENST before today)."""
    active, errors = t_not_blocked(_column(ctx, "BLOK"), ctx, None)
    left = _column(ctx, "DATUITDIENST")
    empty = missing(left)
    parsed = pd.to_datetime(keep(left, ~empty), errors="coerce", format="mixed")
    gone = parsed.notna() & (parsed < pd.Timestamp(ctx.today))
    bad = ~empty & parsed.isna()
    out = active.where(~gone, False).astype(object)
    date_errors = errors_where(bad, "DATUITDIENST '" + text(left).astype(str) + "' is not a date")
    return out, combine_errors(errors, date_errors)


_RULE_FUNCTIONS: dict[str, Callable[[Context], Result]] = {
    "reverse_charge": r_reverse_charge,
    "item_type": r_item_type,
    "allow_time_entry": r_allow_time_entry,
    "employee_active": r_employee_active,
}
# name -> (King fields it reads, as names.py declares them; function)
RULES: dict[str, tuple[tuple[str, ...], Callable[[Context], Result]]] = {
    name: (RULE_FIELDS[name], function) for name, function in _RULE_FUNCTIONS.items()
}
