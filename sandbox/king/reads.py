"""GetAdmInfo and GetStamtabelRecords of the King emulator (mixed into KingEmulator)."""

from __future__ import annotations

import math

from lxml import etree

from sandbox.king import adm_info, soap
from sandbox.king.records import Refused, formatters, row_element, row_text, split_fields
from sandbox.king.schema import TABLES, ValueProblem
from sandbox.king.store import (
    Administration,
    Record,
    compile_where,
    matches,
    now,
    order_records,
    parse_mutdate,
)


class ReadOperations:
    """Mixed into KingEmulator (``self.wire``, ``self._adm``, ``self._dataset``, ``self._query_cache``)."""

    def get_adm_info(self, params: dict) -> dict:
        adm = self._adm(params)
        selection = self._dataset(params, "Selectie")
        out = etree.Element("NewDataSet")
        for row in selection:
            if not isinstance(row.tag, str):
                continue
            _complete(row)
            values = row_text(row)
            table = values.get("TABLE", "").upper()
            if table == self.wire.period_dates_table:
                self._period_dates(adm, out, split_fields(values.get("SELECTFIELDS", "*")))
                continue
            if table not in adm_info.FIELDS:
                raise Refused(f"Tabel {table} is onbekend voor GetAdmInfo")
            info = adm.adm_info.get(table, {})
            fields = split_fields(values.get("SELECTFIELDS", "*"))
            if not fields or fields == ["*"]:
                fields = list(adm_info.FIELDS[table])
            element = etree.SubElement(out, table)
            for name in fields:
                if name not in adm_info.FIELDS[table]:
                    raise Refused(f"Veld {name} is onbekend in {table}")
                if info.get(name) is not None:
                    etree.SubElement(element, name).text = str(info[name])
        return {"Records": soap.dataset_text(out)}

    def _period_dates(self, adm: Administration, out: etree._Element, fields: list[str]) -> None:
        names = self.wire.period_dates_fields
        fields = list(names) if not fields or fields == ["*"] else fields
        for name in fields:
            if name not in names:
                raise Refused(f"Veld {name} is onbekend in {self.wire.period_dates_table}")
        periods = int(adm.adm_info.get("BASFIN", {}).get("AANTPER", 12))
        this_year = now().year
        for period in adm_info.period_dates(
            periods, adm.fiscal_year_start, range(this_year - 2, this_year + 3)
        ):
            values = dict(
                zip(
                    names,
                    (period[0], period[1], f"{period[2]:%d-%m-%Y}", f"{period[3]:%d-%m-%Y}"),
                    strict=True,
                )
            )
            element = etree.SubElement(out, self.wire.period_dates_table)
            for name in fields:
                etree.SubElement(element, name).text = str(values[name])

    def get_stamtabel_records(self, params: dict) -> dict:
        adm = self._adm(params)
        selection = self._dataset(params, "Selectie")
        rows = [row for row in selection if isinstance(row.tag, str)]
        if not rows:
            raise Refused("Selectie bevat geen rij")
        _complete(rows[0])
        values = row_text(rows[0])
        raw = row_text(rows[0], strip=False)
        table = values.get("TABLE", "").upper()
        if table not in TABLES:
            raise Refused(f"Tabel {table} is onbekend")
        known = list(TABLES[table]["fields"])
        fields = split_fields(values.get("SELECTFIELDS", "*"))
        if not fields or "*" in fields:
            fields = known
        for name in fields:
            if name not in TABLES[table]["fields"]:
                raise Refused(f"Veld {name} is onbekend in tabel {table}")
        try:
            query = (
                adm.environment_code,
                table,
                raw.get("WHEREFIELDS", ""),
                raw.get("WHEREOPERATORS", ""),
                raw.get("WHEREVALUES", ""),
                values.get("MUTDATE_VA", ""),
                values.get("ORDERBY", ""),
            )
            records = self._query_cache.get(query)
            if records is None:
                records = self._query(adm, table, values, raw, self.wire.orderby_separator)
                if len(self._query_cache) > 32:
                    self._query_cache.clear()
                self._query_cache[query] = records
            max_result = int(values.get("MAXRESULT") or 0)
            page_size = int(values.get("PAGESIZE") or 0)
            page = int(values.get("SELECTPAGE") or 1)
        except ValueProblem as exc:
            raise Refused(str(exc)) from None
        except ValueError:
            raise Refused("MAXRESULT, PAGESIZE en SELECTPAGE moeten gehele getallen zijn") from None
        if max_result > 0:
            records = records[:max_result]
        total = len(records)
        if page_size <= 0:
            page_size = max(total, 1)
        pages = math.ceil(total / page_size)
        chunk = records[(page - 1) * page_size : page * page_size] if page >= 1 else []
        out = etree.Element("NewDataSet")
        field_formats = formatters(table, fields)
        for record in chunk:
            out.append(row_element("DATA", table, record, fields, field_formats))
        if "PDF_BESTAND" in values and table == "BOE":
            groups = {record.get("GRPROW") for record in chunk}
            for doc in adm.documents:
                if doc.get("GRPROW") in groups:
                    element = etree.SubElement(out, "PDF_BESTAND")
                    for name in ("DAGB", "JR", "PN", "RG", "GRPROW", "FILENAME", "FILEDESCRIPTION", "FILE"):
                        if doc.get(name) is not None:
                            etree.SubElement(element, name).text = str(doc[name])
        metadata = etree.SubElement(out, "METADATA")
        etree.SubElement(metadata, "RECORDCOUNT").text = str(total)
        etree.SubElement(metadata, "TOTALPAGES").text = str(pages)
        return {"Records": soap.dataset_text(out)}

    @staticmethod
    def _query(adm: Administration, table: str, values: dict, raw: dict, separator: str) -> list[Record]:
        conditions = compile_where(
            table, raw.get("WHEREFIELDS", ""), raw.get("WHEREOPERATORS", ""), raw.get("WHEREVALUES", "")
        )
        since = parse_mutdate(values["MUTDATE_VA"]) if values.get("MUTDATE_VA") else None
        records = [
            r
            for r in adm.tables[table]
            if (since is None or r.mutdate >= since) and (not conditions or matches(r, conditions))
        ]
        return order_records(table, records, values.get("ORDERBY", ""), separator)


def _complete(row: etree._Element) -> None:
    """A selection row without one of the tags King always wants (even empty) is refused with the
    text a live client quoted (research notes N1): "De selectie is incompleet, zie veld: ORDERBY"."""
    names = {etree.QName(child).localname.upper() for child in row if isinstance(child.tag, str)}
    for tag in ("WHEREFIELDS", "WHEREOPERATORS", "WHEREVALUES", "ORDERBY"):
        if tag not in names:
            raise Refused(f"De selectie is incompleet, zie veld: {tag}")
