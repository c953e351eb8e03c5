"""The table reads of KingFinanceHook (mixed in): GetStamtabelRecords page by page, a whole table as
a typed DataFrame (the mapping's input), the read that isolates records King cannot serve, and
GetAdmInfo."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any

from lxml import etree

from king_qics.errors import ProtocolError
from king_qics.hooks.king.query import TableQuery, read_isolated, selection, selection_row
from king_qics.hooks.king.schema import (
    BOOL,
    DATE,
    DECIMAL,
    FIELD_TYPES,
    INT,
    MONEY,
    field_type,
    key_of,
    parse_value,
    to_wire,
)
from king_qics.hooks.king.soap import Dataset, parse_xml, row_texts


class TableReads:
    """Mixed into KingFinanceHook (uses its ``call``, ``profile`` and ``page_size``)."""

    def _records(self, answer: dict, operation: str) -> etree._Element:
        text = answer.get("Records") or ""
        if not isinstance(text, str) or not text.strip():
            return etree.Element("NewDataSet")
        return parse_xml(text.strip(), f"{operation} Records")

    def read_records(
        self,
        table: str,
        fields: Sequence[str] | str = "*",
        where: Sequence[tuple[str, str, Any]] | None = None,
        changed_since: date | datetime | None = None,
        order_by: Sequence[str] | str | None = None,
        page_size: int | None = None,
        max_result: int = 0,
        with_files: bool = False,
    ) -> Iterator[tuple[list[dict[str, str]], list[dict[str, str]]]]:
        """Yield ``(rows, files)`` per page; rows are {field: wire text} (files: PDF_BESTAND)."""
        query = TableQuery.of(table, fields, where, changed_since, order_by, max_result, with_files)
        page_size = page_size or self.page_size
        page, pages = 1, 1
        while page <= pages:
            rows, files, pages = self.read_page(query, page, page_size)
            yield rows, files
            page += 1

    def read_page(self, query: TableQuery, page: int, page_size: int) -> tuple[list, list, int]:
        """One page of a query: (rows, files, number of pages)."""
        values: dict[str, Any] = {"TABLE": query.table, "SELECTFIELDS": "\t".join(query.select)}
        if query.where:
            values["WHEREFIELDS"] = "\t".join(name.upper() for name, _, _ in query.where)
            values["WHEREOPERATORS"] = "\t".join(op.upper() for _, op, _ in query.where)
            values["WHEREVALUES"] = "\t".join(to_wire(value) for _, _, value in query.where)
        if query.changed_since is not None:
            values["MUTDATE_VA"] = to_wire(query.changed_since)  # the date only: the documented form
        values.update(
            ORDERBY=self.profile.orderby_separator.join(query.order),
            MAXRESULT=query.max_result,
            PAGESIZE=page_size,
            SELECTPAGE=page,
        )
        if query.with_files:
            values["PDF_BESTAND"] = " "  # presence asks for the files; a value keeps the tag
        answer = self.call("GetStamtabelRecords", [("Selectie", selection(values)), ("Records", "")])
        if not answer["Result"]:
            raise ProtocolError(f"King GetStamtabelRecords {query.table}: {answer['Foutmelding']}")
        records = self._records(answer, "GetStamtabelRecords")
        rows = [row_texts(el) for el in records if isinstance(el.tag, str) and el.tag == "DATA"]
        files = [row_texts(el) for el in records if isinstance(el.tag, str) and el.tag == "PDF_BESTAND"]
        meta = records.find("METADATA")
        if meta is not None and (meta.findtext("TOTALPAGES") or "").strip():
            pages = int(meta.findtext("TOTALPAGES").strip())
        else:
            count = meta.findtext("RECORDCOUNT") if meta is not None else None
            pages = (
                math.ceil(int(count) / page_size) if count else (page + 1 if len(rows) >= page_size else page)
            )
        return rows, files, pages

    def read_table_isolated(
        self,
        table: str,
        fields: Sequence[str] | str = "*",
        where: Sequence[tuple[str, str, Any]] | None = None,
        changed_since: date | datetime | None = None,
    ):
        """Like :meth:`read_table`, but a page King cannot serve (an HTTP 5xx that outlives the
        retries, e.g. for a record holding a control character) is narrowed down to the records it
        cannot serve: -> (DataFrame of every other record, {key: reason})."""
        query = TableQuery.of(table, fields, where, changed_since)
        return read_isolated(self, query, self.page_size, lambda rows: _frame(query.table, fields, rows))

    def read_table(
        self,
        table: str,
        fields: Sequence[str] | str = "*",
        where: Sequence[tuple[str, str, Any]] | None = None,
        changed_since: date | datetime | None = None,
        order_by: Sequence[str] | str | None = None,
        page_size: int | None = None,
    ):
        """All matching records of a King table as a typed DataFrame (every page, no duplicates)."""
        table = table.upper()
        seen: set[tuple] = set()
        rows: list[dict[str, str]] = []
        for page_rows, _ in self.read_records(table, fields, where, changed_since, order_by, page_size):
            rows.extend(_unseen(table, page_rows, seen))
        return _frame(table, fields, rows)

    def get_adm_info(self, tables: dict[str, Sequence[str]] | None = None) -> dict[str, dict[str, Any]]:
        """GetAdmInfo: {table: {field: value}} (numbers as int where they are numbers); a table
        answered in several rows (e.g. the period dates) as its last row, all rows in
        :meth:`get_adm_rows`."""
        return {table: rows[-1] for table, rows in self.get_adm_rows(tables).items() if rows}

    def get_adm_rows(self, tables: dict[str, Sequence[str]] | None = None) -> dict[str, list[dict[str, Any]]]:
        """GetAdmInfo, every row of every table asked: {table: [{field: value}, ...]}."""
        tables = tables or {
            "BASFIN": ["AANTPER"],
            "PERIODEINFO": ["JRAFGESL", "PNAFGESL", "JRAFGESLGEBR", "PNAFGESLGEBR"],
        }
        root = etree.Element("NewDataSet")
        for table, fields in tables.items():  # the same full row as every other selection
            row = selection_row({"TABLE": table, "SELECTFIELDS": "\t".join(fields), "MAXRESULT": 0})
            root.append(row)
        answer = self.call(
            "GetAdmInfo", [("Selectie", Dataset(etree.tostring(root, encoding="unicode"))), ("Records", "")]
        )
        if not answer["Result"]:
            raise ProtocolError(f"King GetAdmInfo: {answer['Foutmelding']}")
        out: dict[str, list[dict[str, Any]]] = {}
        for element in self._records(answer, "GetAdmInfo"):
            if isinstance(element.tag, str):
                out.setdefault(element.tag, []).append(
                    {
                        name: (int(text) if re.fullmatch(r"-?\d+", text or "") else text)
                        for name, text in row_texts(element).items()
                    }
                )
        return out


def _unseen(table: str, rows: list[dict[str, str]], seen: set[tuple]) -> Iterator[dict[str, str]]:
    """Rows whose key was not yet seen (a record that moved across a page boundary comes once)."""
    keys = key_of(table)
    for row in rows:
        key = tuple(row.get(k) for k in keys)
        if key not in seen:
            seen.add(key)
            yield row


def _frame(table: str, fields: Sequence[str] | str, rows: list[dict[str, str]]):
    import pandas as pd

    if isinstance(fields, str) and fields.strip() == "*":
        columns: list[str] = []
        for row in rows:
            columns.extend(name for name in row if name not in columns)
        if not rows:
            columns = list(FIELD_TYPES.get(table, {}))
    else:
        columns = [fields.upper()] if isinstance(fields, str) else [name.upper() for name in fields]
    return pd.DataFrame({name: _column(table, name, [row.get(name) for row in rows]) for name in columns})


def _column(table: str, name: str, texts: list[str | None]):
    import pandas as pd

    kind = field_type(table, name)
    values = [parse_value(kind, text) for text in texts]
    if kind == INT:
        return pd.array(values, dtype="Int64")
    if kind == BOOL:
        return pd.array(values, dtype="boolean")
    if kind == DATE:
        return pd.to_datetime(pd.Series(values, dtype=object))
    if kind in (MONEY, DECIMAL):
        return pd.Series(values, dtype=object)
    return pd.Series(values, dtype=object)
