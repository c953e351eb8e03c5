"""QicsMilestones OData as data: field types, values from and to the wire, and ``$filter`` built as data
and rendered per wire profile (enum and date literals).

Which fields are enums (and of which enum type) and which are Edm.DateTimeOffset is known here and
nowhere else. On the wire QicsMilestones serialises 64-bit ids and decimals as JSON strings; reads
come back with ids as ``int``, decimals as :class:`~decimal.Decimal` and booleans as ``bool``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from king_qics.errors import ProtocolError
from king_qics.hooks.qics.profile import DEFAULT_PROFILE, QicsProfile

ODATA_ROOT = "/api/V3/odata"

# Decimal fields (JSON strings on the wire); every other field ending in "Id" is a 64-bit id.
DECIMAL_FIELDS = frozenset(
    {
        "Percentage",
        "PriceIndex",
        "SurchargePercentage",
        "Quantity",
        "Price",
        "AmountExclVat",
        "VatPercentage",
        "VatAmount",
        "TotalAmountExclVat",
        "TotalVatAmount",
        "TotalAmountInclVat",
        "BudgetAmount",
        "ContractValue",
    }
)
# Edm.Int32 fields (JSON numbers). ResourceNumber is "integer" without "64-bit" on the help pages
# (OverviewInvoiceLine.EmployeeCompanyEmployeeNumber, research notes B.6).
INTEGER_FIELDS = frozenset(
    {
        "PaymentTerm",
        "InvoiceNumberLength",
        "InvoiceNumberCounter",
        "EmployeeNumber",
        "EmployeeCompanyEmployeeNumber",
        "ProjectResourceCompanyResourceNumber",
    }
)
NON_ID_FIELDS = frozenset({"AsyncServerCommandId"})  # "…Id" fields that are not numeric (none known yet)

# Enum-typed properties -> their enum type (in the profile's enum_namespace). Type names from the
# help pages (e.g. OverviewInvoiceLine.Origin is a QicsUnity.Api.Areas.V3.Models.InvoiceLineOrigin).
ENUM_FIELDS: dict[str, str] = {
    "InvoiceHeaderState": "InvoiceHeaderState",
    "InvoiceHeaderType": "InvoiceHeaderType",
    "PaymentConditionType": "PaymentConditionType",
    "ItemType": "ItemType",
    "CustomerType": "CustomerType",
    "IcpReturn": "IcpReturn",
    "EntityType": "EntityType",
    "InvoiceLineType": "InvoiceLineType",
    "InvoiceLineType2": "InvoiceLineType2",
    "InvoiceLineState": "InvoiceLineState",
    "Origin": "InvoiceLineOrigin",
}
# Edm.DateTimeOffset properties (a date compared with them is written per the profile's
# date_literal_style); any other date is an Edm.Date, written bare.
DATETIME_FIELDS = frozenset({"InvoiceDate", "DueDate", "CreatedOn", "DataSourceDate", "Date"})

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OPERATORS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})


def is_id(field: str) -> bool:
    return field.endswith("Id") and field not in NON_ID_FIELDS


def is_integer(field: str) -> bool:
    return field in INTEGER_FIELDS or is_id(field)


def key(value: Any) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(f"a QicsMilestones id must be an integer, got {value!r}") from None


# -- values from and to the wire ------------------------------------------------------------------


def typed(record: dict) -> dict:
    """A record from the wire with ids as int, decimals as Decimal (booleans are native JSON);
    ``@odata.*`` / ``odata.*`` annotations dropped."""
    out = {}
    for field, value in record.items():
        if field.startswith(("@odata.", "odata.")):
            continue
        if value is None or isinstance(value, bool):
            out[field] = value
            continue
        if field in DECIMAL_FIELDS:
            try:
                value = Decimal(str(value))
            except InvalidOperation:
                raise ProtocolError(f"qics: field {field} is not a decimal number") from None
        elif is_integer(field):
            try:
                value = int(str(value))
            except ValueError:
                raise ProtocolError(f"qics: field {field} is not an integer id") from None
        out[field] = value
    return out


def to_wire(record: dict) -> dict:
    """A record as JSON: Decimals as strings, numpy/pandas scalars as plain values, NA as null."""
    import pandas as pd

    out = {}
    for field, value in record.items():
        if value is None or value is pd.NA or value is pd.NaT:
            out[field] = None
            continue
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            value = value.item()  # numpy scalar
        if isinstance(value, float) and math.isnan(value):
            value = None
        elif isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, (dt.datetime, dt.date)):
            value = value.isoformat()
        elif isinstance(value, float) and field in DECIMAL_FIELDS:
            value = str(Decimal(str(value)))
        out[field] = value
    return out


# -- $filter ----------------------------------------------------------------------------------------


def odata_literal(value: Any, field: str | None = None, profile: QicsProfile = DEFAULT_PROFILE) -> str:
    """``value`` as a $filter literal for ``field``: enums and dates as the profile says."""
    if value is None:
        return "null"
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalar
    if isinstance(value, bool):
        return "true" if value else "false"
    if field is not None and is_integer(field):
        return str(key(value))
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        if field in DATETIME_FIELDS and profile.date_literal_style == "datetime":
            return f"{value.isoformat()}T00:00:00Z"
        return value.isoformat()
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return str(Decimal(str(value)))
    text = "'" + str(value).replace("'", "''") + "'"
    if field in ENUM_FIELDS and profile.enum_literal_style == "qualified":
        return f"{profile.enum_namespace}.{ENUM_FIELDS[field]}{text}"
    return text


@dataclass(frozen=True)
class ODataFilter:
    """A ``$filter`` as data: an OR of AND-groups of ``(field, op, value)``, rendered by the hook that
    sends it with that hook's wire profile (``str()`` renders it with the default profile)."""

    groups: tuple[tuple[tuple[str, str, Any], ...], ...] = ((),)

    @classmethod
    def where(cls, conditions: Mapping[str, Any] | None = None, /, **more: Any) -> ODataFilter:
        """Every field equals its value: ``where({"CompanyId": 1, "InvoiceHeaderState": "Processed"})``."""
        return cls((tuple(_comparison(f, "eq", v) for f, v in {**(conditions or {}), **more}.items()),))

    @classmethod
    def compare(cls, field: str, op: str, value: Any) -> ODataFilter:
        return cls(((_comparison(field, op, value),),))

    @classmethod
    def any_of(cls, field: str, values: Iterable[Any]) -> ODataFilter:
        """``field`` equals one of ``values`` (``f eq a or f eq b``)."""
        groups = tuple((_comparison(field, "eq", value),) for value in values)
        if not groups:
            raise ValueError("any_of needs at least one value")
        return cls(groups)

    def __and__(self, other: ODataFilter) -> ODataFilter:
        return ODataFilter(tuple(a + b for a in self.groups for b in other.groups))

    def __or__(self, other: ODataFilter) -> ODataFilter:
        return ODataFilter(self.groups + other.groups)

    def __bool__(self) -> bool:
        return any(self.groups)

    def render(self, profile: QicsProfile = DEFAULT_PROFILE) -> str:
        """The $filter text (``and`` binds tighter than ``or``, so no parentheses are needed)."""
        return " or ".join(
            " and ".join(f"{f} {op} {odata_literal(v, f, profile)}" for f, op, v in group)
            for group in self.groups
            if group
        )

    def __str__(self) -> str:
        return self.render()


def _comparison(field: str, op: str, value: Any) -> tuple[str, str, Any]:
    if not _IDENTIFIER.match(field):
        raise ValueError(f"not an OData property name: {field!r}")
    if op not in _OPERATORS:
        raise ValueError(f"unsupported $filter operator {op!r}")
    return field, op, value


def odata_filter(conditions: Mapping[str, Any]) -> ODataFilter:
    """``{"CustomerCode": "10000", "CompanyId": 1}`` -> ``CustomerCode eq '10000' and CompanyId eq 1``
    (as an ODataFilter: the hook renders enum and date literals per its profile)."""
    return ODataFilter.where(conditions)


# -- errors -----------------------------------------------------------------------------------------


def error_message(response: requests.Response) -> str:
    """The service's error text: OData ``error.message`` plus each detail's target, or OAuth error."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        if text[:1] == "<":
            return f"HTTP {response.status_code} (an HTML error page)"
        return f"HTTP {response.status_code}: {text[:200]}" if text else f"HTTP {response.status_code}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or error.get("code") or f"HTTP {response.status_code}")
        details = [d for d in error.get("details") or [] if isinstance(d, dict)]
        if details:
            message = "; ".join(f"{d.get('target')}: {d.get('message')}" for d in details)
        return message
    if isinstance(error, str):
        return f"{error}: {body.get('error_description', '')}".strip(": ")
    if isinstance(body, dict) and body.get("Message"):  # ASP.NET Web API default error shape
        return str(body["Message"])
    return f"HTTP {response.status_code}"
