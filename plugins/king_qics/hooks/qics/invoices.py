"""The invoice side of QicsMilestonesHook: processed invoices and their lines, PDFs, EntityState, and
the service's ``$metadata``, each read the way the connection's wire profile says."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from king_qics.errors import ProtocolError
from king_qics.hooks.qics.metadata import ServiceMetadata, parse_metadata
from king_qics.hooks.qics.odata import ODATA_ROOT, ODataFilter, key, typed

log = logging.getLogger(__name__)


class QicsInvoices:
    """Mixed into QicsMilestonesHook (uses its profile, request, iter_records, create)."""

    def processed_invoices(self, company_id: Any, date_from: dt.date | str | None = None) -> list[dict]:
        """Processed invoices of a company (optionally dated on/after ``date_from``), each with its
        ``lines`` (see :meth:`invoice_lines`), by InvoiceHeaderId."""
        filter_ = self.processed_filter(company_id, date_from)
        invoices = list(self.iter_records("Invoice", filter=filter_, orderby="InvoiceHeaderId"))
        lines = self.invoice_lines(inv["InvoiceHeaderId"] for inv in invoices)
        return [{**invoice, "lines": lines.get(invoice["InvoiceHeaderId"], [])} for invoice in invoices]

    def processed_filter(self, company_id: Any, date_from: dt.date | str | None = None) -> ODataFilter:
        """The $filter of a company's processed invoices (InvoiceDate on/after ``date_from``)."""
        filter_ = ODataFilter.where(
            {"CompanyId": key(company_id), "InvoiceHeaderState": self.profile.invoice_processed_state}
        )
        if date_from is not None:
            day = date_from if isinstance(date_from, dt.date) else dt.date.fromisoformat(str(date_from)[:10])
            filter_ &= ODataFilter.compare("InvoiceDate", "ge", day)
        return filter_

    def invoice_lines(self, invoice_ids: Iterable[Any]) -> dict[int, list[dict]]:
        """The lines of these invoices, by invoice and then line id, read from the profile's
        invoice-line set and named as the export names them (``AmountExclVat``, ``VatCodeId``,
        ``VatPercentage``, ``VatAmount``, ``GLAccountRevenue``, ``CostCenterId``, ``ItemCompanyId``,
        ``InvoiceHeaderId``, ``InvoiceLineId``; the other fields as the service sends them)."""
        wire = self.profile.line_fields()  # ours -> wire
        ours = {name: mine for mine, name in wire.items()}
        header, line_id = wire["InvoiceHeaderId"], wire["InvoiceLineId"]
        ids = sorted({key(i) for i in invoice_ids})
        lines: dict[int, list[dict]] = {i: [] for i in ids}
        for start in range(0, len(ids), self.lines_per_request):
            chunk = ODataFilter.any_of(header, ids[start : start + self.lines_per_request])
            for record in self.iter_records(self.profile.invoice_line_set, filter=chunk, orderby=line_id):
                line = typed({ours.get(name, name): value for name, value in record.items()})
                if line.get("InvoiceHeaderId") is None:
                    raise ProtocolError(
                        f"qics GET {self.profile.invoice_line_set}: a line without {header} (profile"
                        " setting line_header_field)"
                    )
                if line["InvoiceHeaderId"] in lines:
                    lines[line["InvoiceHeaderId"]].append(line)
        return lines

    def invoice_pdf(self, invoice_id: Any) -> bytes | None:
        """The invoice's PDF (route: the profile's invoice_pdf_path), or None when it has none."""
        invoice_key = key(invoice_id)
        operation = "GET Invoice/Pdf"
        response = self.request(
            operation,
            "GET",
            self.profile.pdf_path(invoice_key),
            idempotent=True,
            headers={"Accept": "application/pdf"},
        )
        if response.status_code == 404:
            return None
        self._check(response, operation, invoice_key)
        if not response.content.startswith(b"%PDF"):
            raise ProtocolError(f"qics {operation}: invoice {invoice_key}: the answer is not a PDF")
        return response.content

    def post_entity_state(
        self,
        *,
        entity_id: Any,
        data_source: str,
        data_source_date: dt.datetime | None = None,
        is_error: bool = False,
        data_source_key: str | None = None,
        message: str | None = None,
        entity_type: str | None = None,
        company_id: Any = None,
    ) -> dict:
        """Report an entity's sync state (e.g. "invoice booked as entry X", or an error) to Qics;
        ``entity_type`` defaults to the profile's invoice_entity_type."""
        when = data_source_date or dt.datetime.now(dt.UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        record = {
            "CompanyId": company_id if company_id is not None else self.company_id,
            "EntityId": entity_id,
            "EntityType": entity_type or self.profile.invoice_entity_type,
            "DataSource": data_source,
            "DataSourceKey": data_source_key,
            "DataSourceDate": when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "IsError": bool(is_error),
            "Message": message,
        }
        return self.create("EntityState", record)

    def metadata(self) -> ServiceMetadata:
        """``GET $metadata``, parsed: entity sets -> properties and EDM types, enum types -> members."""
        operation = "GET $metadata"
        response = self.request(
            operation,
            "GET",
            f"{ODATA_ROOT}/$metadata",
            idempotent=True,
            headers={"Accept": "application/xml"},
        )
        self._check_read(response, operation)
        return parse_metadata(response.content)
