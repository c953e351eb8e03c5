"""Canonical values and record hashes: one JSON form per value (so 21, 21.0, Decimal("21.00") and
"21" compare and hash alike), and the sha256 of a mapped record that the state store keeps."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import pandas as pd


def canonical_value(value: Any) -> Any:
    """One JSON representation per value: numbers as normalised decimal text, dates ISO, None for NaN."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value)).normalize()
        return str(number.quantize(Decimal(1)) if number == number.to_integral_value() else number)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return canonical_value(value.item())
    return str(value)


def record_hash(row: dict | pd.Series) -> str:
    """Stable sha256 of a mapped record (field order, int vs Decimal vs '21.0' do not matter)."""
    items = row.items()
    canonical = {str(name): canonical_value(value) for name, value in items}
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_hashes(records: pd.DataFrame) -> pd.Series:
    """record_hash of every row, indexed like ``records``."""
    names = list(records.columns)
    return pd.Series(
        [
            record_hash(dict(zip(names, row, strict=True)))
            for row in records.itertuples(index=False, name=None)
        ],
        index=records.index,
        dtype=object,
    )
