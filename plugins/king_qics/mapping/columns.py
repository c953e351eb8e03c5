"""Column helpers of the mapping engine: what a transform or rule gets besides its column (the
Context), and the operations every one of them uses on whole pandas columns (text forms of
values, missing values, keeping values where a mask holds, errors and warnings per row)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Context:
    """What a transform or rule may use besides its column."""

    frame: pd.DataFrame
    administration: Any
    lookups: dict[str, dict[str, int]] = field(default_factory=dict)
    extra_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    today: date = field(default_factory=date.today)
    # (rows, message) pairs a transform raised: the record is mapped, and the task log says why
    # it may not be what King holds (mapping.MappingResult.warnings)
    warnings: list[tuple[pd.Series, pd.Series]] = field(default_factory=list)

    def warn(self, mask: pd.Series, messages: pd.Series | str) -> None:
        if mask.any():
            self.warnings.append((mask, errors_where(mask, messages)))

    def config(self, path: str) -> Any:
        """``defaults.item_type``, ``company_id``, ... of the administration."""
        value = self.administration
        for part in path.split("."):
            value = value[part] if isinstance(value, dict) else getattr(value, part)
        return value


Result = tuple[pd.Series, pd.Series | None]


# -- column helpers ---------------------------------------------------------------------------


def blank(index: pd.Index) -> pd.Series:
    return pd.Series([None] * len(index), index=index, dtype=object)


def keep(values: pd.Series, mask: pd.Series) -> pd.Series:
    """Object Series with ``values`` where ``mask`` holds and None elsewhere (never NaN: pandas'
    ``where(mask, None)`` gives NaN on non-object dtypes, such as the 'str' dtype map() infers)."""
    out = values.astype(object).copy()
    out[~mask.to_numpy(dtype=bool)] = None
    return out


def finalize(values: pd.Series) -> pd.Series:
    """Object dtype, Python scalars (int, bool, str, Decimal), None for missing."""
    if pd.api.types.is_bool_dtype(values.dtype) and not values.isna().any():
        return values.astype(bool).astype(object)
    if pd.api.types.is_integer_dtype(values.dtype):
        out = values.astype(object)
        return keep(out, values.notna())
    if pd.api.types.is_float_dtype(values.dtype):
        integral = values.notna() & (values == np.floor(values.fillna(0)))
        out = values.astype(object)
        out[integral] = values[integral].astype("int64").astype(object)
        return keep(out, values.notna())
    out = values.astype(object)
    return keep(out, values.notna())


def missing(values: pd.Series) -> pd.Series:
    """True where a value is None/NaN/NaT or text that is empty after stripping."""
    absent = values.isna()
    if all_text(values):
        return absent | values.where(~absent, "x").astype(str).str.strip().eq("")
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        is_text = values.map(lambda v: isinstance(v, str), na_action="ignore").fillna(False).astype(bool)
        empty_text = values.where(is_text, "x").astype(str).str.strip().eq("")
        return absent | (is_text & empty_text)
    return absent


def text_scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "J" if value else "N"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal(1))) if value == value.to_integral_value() else str(value)
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    return str(value)


def all_text(values: pd.Series) -> bool:
    """Every present value is a str (checked in C, not per row in Python)."""
    if isinstance(values.dtype, pd.StringDtype):
        return True
    return values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")


def text(values: pd.Series) -> pd.Series:
    """Values as text (10000.0 -> '10000'), None for missing."""
    if all_text(values):
        return keep(values.astype(object), values.notna())
    if pd.api.types.is_integer_dtype(values.dtype):
        return finalize(values.astype("Int64").astype("string").astype(object))
    out = values.astype(object).map(text_scalar, na_action="ignore")
    return keep(out, values.notna())


def key_text(values: pd.Series) -> pd.Series:
    """King codes as the text the state store keys on: stripped, integral numbers without '.0'."""
    out = text(values)
    out = on_text(out, lambda t: t.strip())
    return keep(out, ~missing(out))


def on_text(values: pd.Series, operation) -> pd.Series:
    """Apply a ``.str`` operation to the present values; None stays None."""
    present = values.notna()
    return keep(operation(values.where(present, "").astype(str).str), present)


def errors_where(mask: pd.Series, messages: pd.Series | str) -> pd.Series | None:
    if not mask.any():
        return None
    out = blank(mask.index)
    if isinstance(messages, str):
        out[mask] = messages
    else:
        out[mask] = messages[mask]
    return out


def combine_errors(first: pd.Series | None, second: pd.Series | None) -> pd.Series | None:
    if first is None:
        return second
    if second is None:
        return first
    both = first.notna() & second.notna()
    out = first.where(first.notna(), second)
    out[both] = first[both].astype(str) + "; " + second[both].astype(str)
    return out
