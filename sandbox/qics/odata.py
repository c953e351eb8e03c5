"""OData v4 pieces the emulator needs: typed values, JSON serialisation, $filter, $orderby.

$filter grammar (a subset, assumption): ``cmp (and|or cmp)*`` with ``and`` binding tighter than
``or``; no parentheses; ``cmp`` is ``Field op literal`` with op one of eq ne gt ge lt le; literals:
``'text'`` ('' escapes a quote), numbers, ``true``/``false``, ``null``, unquoted dates or
date-times (``2026-10-01``, ``2026-10-01T00:00:00Z``) and enum literals ``Namespace.Type'Member'``.

What the wire profile (sandbox/qics/profile.py) decides, as ODL does: in ``default`` an enum
property compares only with a type-qualified literal of its own type (a bare ``'Member'`` is OData's
"A binary operator with incompatible types was detected", OData/WebApi#1480) and an
Edm.DateTimeOffset property only with a date-time (a bare date is refused as by ODL 7 before
OData/WebApi PR #1733); in ``alt`` enums compare only with bare ``'Member'`` and a bare date means
that day's midnight in Europe/Amsterdam.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sandbox.qics.schema import NAMESPACE, EntitySet

if TYPE_CHECKING:
    from sandbox.qics.profile import WireProfile

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


class ODataError(Exception):
    def __init__(self, status: int, code: str, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or []

    def body(self) -> dict:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class BadValue(ValueError):
    pass


_INT_RE = re.compile(r"^-?\d+$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def coerce(kind: str, value: Any) -> Any:
    """An input value (JSON) as the stored Python value; raises BadValue."""
    if value is None:
        return None
    if kind in ("id", "int"):
        if isinstance(value, bool):
            raise BadValue("expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and _INT_RE.match(value.strip()):
            return int(value.strip())
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise BadValue("expected an integer")
    if kind == "dec":
        if isinstance(value, bool):
            raise BadValue("expected a decimal number")
        try:
            result = Decimal(str(value).strip()) if isinstance(value, (int, float, str)) else None
        except InvalidOperation:
            result = None
        if result is None or not result.is_finite():
            raise BadValue("expected a decimal number")
        return result
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise BadValue("expected true or false")
    if kind == "date":
        if isinstance(value, str):
            text = value[:10]
            try:
                date.fromisoformat(text)
                return text
            except ValueError:
                pass
        raise BadValue("expected a date (YYYY-MM-DD)")
    if kind == "datetime":
        if isinstance(value, str):
            return utc_text(value)
        raise BadValue("expected a date-time (ISO 8601)")
    if isinstance(value, str):
        return value
    raise BadValue("expected a string")


def utc_text(value: str) -> str:
    """An Edm.DateTimeOffset as the service stores and answers it: UTC, ``Z``. A bare date is that
    day's midnight in Europe/Amsterdam, as a Dutch user entered it (so 2026-10-05 is
    2026-10-04T22:00:00Z): what a .NET DateTime property looks like through OData v4."""
    text = value.strip()
    try:
        if _DATE_RE.match(text):
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time(), AMSTERDAM)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadValue("expected a date-time (ISO 8601)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_json(entity: EntitySet, record: dict, select: list[str] | None = None) -> dict:
    """A stored record as the service serialises it: 64-bit ids and decimals as strings."""
    out = {}
    for name, kind in entity.fields.items():
        if select and name not in select:
            continue
        value = record.get(name)
        if value is not None and kind in ("id", "dec"):
            value = str(value)
        out[name] = value
    return out


# -- $filter -------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<enum>[A-Za-z_][A-Za-z0-9_.]*'(?:[^']|'')*')|(?P<str>'(?:[^']|'')*')|(?P<dt>\d{4}-\d{2}-\d{2}(?:T[\d:.]+(?:Z|[+-]\d{2}:\d{2})?)?)"
    r"|(?P<num>-?\d+(?:\.\d+)?[mMdD]?)|(?P<word>[A-Za-z_][A-Za-z0-9_/]*))"
)
_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}
_OPERATOR_KIND = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}
_NOT_VALID = "The query specified in the URI is not valid. "
_NULL = object()


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match or match.end() == pos:
            raise ODataError(
                400, "InvalidFilter", f"$filter: cannot parse at position {pos}: {text[pos : pos + 20]!r}"
            )
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def parse_filter(entity: EntitySet, text: str, profile: WireProfile):
    """A predicate over (served) records; raises ODataError(400) on anything it does not support."""
    tokens = _tokens(text)
    groups: list[list[tuple[str, str, Any]]] = [[]]
    i = 0
    while True:
        if i + 3 > len(tokens):
            raise ODataError(400, "InvalidFilter", "$filter: expected 'Field op value'")
        (fk, field), (ok, op), (vk, raw) = tokens[i : i + 3]
        if fk != "word" or field not in entity.fields:
            raise ODataError(400, "InvalidFilter", f"$filter: unknown property {field!r} on {entity.name}")
        if ok != "word" or op not in _OPS:
            raise ODataError(400, "InvalidFilter", f"$filter: unsupported operator {op!r}")
        groups[-1].append((field, op, _literal(entity, field, op, vk, raw, profile)))
        i += 3
        if i == len(tokens):
            break
        kind, joiner = tokens[i]
        if kind != "word" or joiner not in ("and", "or"):
            raise ODataError(400, "InvalidFilter", f"$filter: expected 'and' or 'or', got {joiner!r}")
        if joiner == "or":
            groups.append([])
        i += 1

    def predicate(record: dict) -> bool:
        return any(all(_compare(record.get(f), op, v) for f, op, v in group) for group in groups)

    return predicate


def _literal(entity: EntitySet, field: str, op: str, kind: str, raw: str, profile: WireProfile) -> Any:
    ftype = entity.fields[field]
    enum_type = entity.enums.get(field)
    if kind == "enum" or (enum_type is not None and kind == "str"):
        return _enum_literal(field, op, kind, raw, enum_type, profile)
    if kind == "word":
        if raw == "null":
            return _NULL
        if raw in ("true", "false"):
            value: Any = raw == "true"
        else:
            raise ODataError(400, "InvalidFilter", f"$filter: unexpected {raw!r}")
    elif kind == "str":
        value = raw[1:-1].replace("''", "'")
    elif kind == "num":
        value = raw.rstrip("mMdD")
    else:
        value = raw
    try:
        if ftype == "datetime" and isinstance(value, str):
            if _DATE_RE.match(value) and not profile.bare_dates:
                raise ODataError(
                    400,
                    "InvalidFilter",
                    _NOT_VALID + "No coercion operator is defined between types 'Microsoft.OData.Edm.Date'"
                    " and 'System.Nullable`1[System.DateTimeOffset]'.",
                )
            return utc_text(value)
        if ftype == "date" and isinstance(value, str):
            return value if _DATE_RE.match(value) else value[:10]
        return coerce(ftype, value)
    except BadValue as exc:
        raise ODataError(400, "InvalidFilter", f"$filter: {field}: {exc}") from None


def _enum_literal(field: str, op: str, kind: str, raw: str, enum_type: str | None, profile) -> str:
    """An enum literal's member (as served); refused as ODL refuses it in this profile."""
    quote = raw.index("'")
    type_name, member = raw[:quote], raw[quote + 1 : -1].replace("''", "'")
    field_type = f"{NAMESPACE}.{enum_type}" if enum_type else "Edm.String"
    literal_type = type_name or "Edm.String"
    incompatible = ODataError(
        400,
        "InvalidFilter",
        _NOT_VALID + "A binary operator with incompatible types was detected. Found operand types"
        f" '{field_type}' and '{literal_type}' for operator kind '{_OPERATOR_KIND[op]}'.",
    )
    if enum_type is None or (kind == "str" and profile.enum_literals == "qualified"):
        raise incompatible
    if kind == "enum":
        if profile.enum_literals == "bare":
            raise ODataError(
                400, "InvalidFilter", _NOT_VALID + f"The type '{type_name}' is not defined in the model."
            )
        if type_name != field_type:
            raise incompatible
    if member not in profile.members(enum_type):
        raise ODataError(
            400,
            "InvalidFilter",
            _NOT_VALID + f"The string '{member}' is not a valid enumeration type constant.",
        )
    return member


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if expected is _NULL:
        return (actual is None) if op == "eq" else (actual is not None) if op == "ne" else False
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if actual is None:
        return False
    try:
        return {
            "gt": actual > expected,
            "ge": actual >= expected,
            "lt": actual < expected,
            "le": actual <= expected,
        }[op]
    except TypeError:
        return False


def parse_orderby(entity: EntitySet, text: str) -> list[tuple[str, bool]]:
    order = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or words[0] not in entity.fields:
            raise ODataError(400, "InvalidOrderBy", f"$orderby: cannot order by {part.strip()!r}")
        direction = words[1].lower() if len(words) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise ODataError(400, "InvalidOrderBy", f"$orderby: unknown direction {words[1]!r}")
        order.append((words[0], direction == "desc"))
    return order


def sort_records(records: list[dict], order: list[tuple[str, bool]]) -> list[dict]:
    for field, descending in reversed(order):
        records = sorted(
            records,
            key=lambda r: (r.get(field) is not None, r.get(field) if r.get(field) is not None else 0),
            reverse=descending,
        )
    return records
