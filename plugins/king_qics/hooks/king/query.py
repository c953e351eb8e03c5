"""A GetStamtabelRecords query as the hook builds it, and the read that isolates a record King cannot
serve instead of failing the whole table."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from lxml import etree

from king_qics.errors import KingQicsError, ProtocolError, TransientError
from king_qics.hooks.king.schema import key_of, to_wire

OPERATORS = ("=", ">", ">=", "<", "<=", "LIKE")
NARROWING_ATTEMPTS = 2  # attempts per call while narrowing a bad page down (it fails by design)


def check_text(value: Any, what: str) -> None:
    if isinstance(value, str) and "\t" in value:
        raise ValueError(f"{what} may not contain a TAB (King's separator)")


@dataclass(frozen=True)
class TableQuery:
    table: str
    select: tuple[str, ...]
    where: tuple[tuple[str, str, Any], ...]
    order: tuple[str, ...]
    changed_since: date | datetime | None = None
    max_result: int = 0
    with_files: bool = False

    @classmethod
    def of(
        cls,
        table: str,
        fields: Sequence[str] | str = "*",
        where: Sequence[tuple[str, str, Any]] | None = None,
        changed_since: date | datetime | None = None,
        order_by: Sequence[str] | str | None = None,
        max_result: int = 0,
        with_files: bool = False,
    ) -> TableQuery:
        """The query as sent: the key always selected (it orders the pages and removes repeats) and
        the last ORDERBY fields, so paging is stable."""
        table = table.upper()
        select = [fields] if isinstance(fields, str) else list(fields)
        select = [name.upper() for name in select]
        keys = list(key_of(table))
        if "*" not in select:
            select += [k for k in keys if k not in select]
        order = [order_by] if isinstance(order_by, str) else list(order_by or [])
        order = [name.upper() for name in order]
        conditions = list(where or [])
        fixed = {name.upper() for name, operator, _ in conditions if operator == "="}
        if not order and set(keys) <= fixed:  # one record: order by one field
            order = [keys[-1]]
        else:  # the key last, so pages are stable
            order += [k for k in keys if k not in order]
        for name, operator, value in conditions:
            check_text(name, "a WHERE field")
            check_text(value, "a WHERE value")
            if operator.upper() not in OPERATORS:
                raise ValueError(f"unsupported King WHERE operator {operator!r}")
        return cls(
            table, tuple(select), tuple(conditions), tuple(order), changed_since, max_result, with_files
        )

    def keys_only(self) -> TableQuery:
        return replace(self, select=tuple(key_of(self.table)), with_files=False)

    def between(self, field: str, low: Any, high: Any) -> TableQuery:
        return replace(self, where=(*self.where, (field, ">=", low), (field, "<=", high)))


SELECTION_TAGS = (  # in the order the working clients send them (research notes B.1)
    "TABLE",
    "SELECTFIELDS",
    "WHEREFIELDS",
    "WHEREOPERATORS",
    "WHEREVALUES",
    "MUTDATE_VA",
    "ORDERBY",
    "MAXRESULT",
    "PAGESIZE",
    "SELECTPAGE",
    "PDF_BESTAND",
)
ALWAYS_SENT = {"WHEREFIELDS", "WHEREOPERATORS", "WHEREVALUES", "ORDERBY"}  # even when empty


def selection_row(values: dict[str, Any]) -> etree._Element:
    """One ``<Table1>`` row of a Selectie: the tags in their order, WHERE* and ORDERBY always there
    (King answers a selection without them "De selectie is incompleet, zie veld: ORDERBY"), an
    empty one as ``<X></X>``, as the working clients send it."""
    row = etree.Element("Table1")
    for tag in SELECTION_TAGS:
        if tag in values or tag in ALWAYS_SENT:
            value = values.get(tag)
            etree.SubElement(row, tag).text = "" if value in (None, "") else to_wire(value)
    return row


def selection(values: dict[str, Any]):
    """A GetStamtabelRecords Selectie of one row, as the dataset string it is sent as."""
    from king_qics.hooks.king.soap import Dataset

    root = etree.Element("NewDataSet")
    root.append(selection_row(values))
    return Dataset(etree.tostring(root, encoding="unicode"))


def read_isolated(hook, query: TableQuery, page_size: int, to_frame: Callable) -> tuple[Any, dict[str, str]]:
    """Every page of ``query``; a page that fails is re-read by its keys (which proves the service is
    up) and narrowed down by key ranges to the records King cannot serve. -> (frame, {key: reason})."""
    keys = key_of(query.table)
    rows: list[dict[str, str]] = []
    unreadable: dict[str, str] = {}
    seen: set[str] = set()
    page, pages = 1, 1
    while page <= pages:
        try:
            page_rows, _, pages = hook.read_page(query, page, page_size)
        except (TransientError, ProtocolError) as exc:
            if len(keys) != 1:
                raise
            try:
                key_rows, _, pages = hook.read_page(query.keys_only(), page, page_size)
            except KingQicsError:
                raise exc from None  # not one record: the service itself
            with _fewer_attempts(hook):
                page_rows = list(
                    _narrow(hook, query, keys[0], [r[keys[0]] for r in key_rows], unreadable, exc)
                )
        for row in page_rows:
            if row.get(keys[0]) not in seen:
                seen.add(row.get(keys[0]))
                rows.append(row)
        page += 1
    return to_frame(rows), unreadable


def _narrow(hook, query, field: str, keys: list[str], unreadable: dict[str, str], first) -> Iterator[dict]:
    if not keys:
        return
    try:
        rows, _, _ = hook.read_page(query.between(field, keys[0], keys[-1]), 1, 2 * len(keys) + 10)
        yield from rows
        return
    except (TransientError, ProtocolError) as exc:
        if len(keys) == 1:
            unreadable[str(keys[0])] = (
                f"King cannot return this record ({exc or first}); often a control character in one of "
                "its text fields: correct the record in King"
            )
            return
    middle = len(keys) // 2
    yield from _narrow(hook, query, field, keys[:middle], unreadable, first)
    yield from _narrow(hook, query, field, keys[middle:], unreadable, first)


@contextmanager
def _fewer_attempts(hook):
    saved = hook.__dict__.get("max_attempts")
    hook.__dict__["max_attempts"] = min(NARROWING_ATTEMPTS, hook.max_attempts)
    try:
        yield
    finally:
        if saved is None:
            hook.__dict__.pop("max_attempts", None)
        else:
            hook.__dict__["max_attempts"] = saved
