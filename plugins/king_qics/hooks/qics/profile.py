"""The QicsMilestones wire profile: every choice about the real REST v3 service that is still a guess,
in one typed place, overridable per connection through its extras (same names).

Defaults are the best public evidence (shared/research/api_evidence_2026-12.md, verified in the
research notes B.6, B.7 and C); each setting says where it comes from, or that it is an assumption.
The README's "Qics wire profile" table lists them; the preflight checks them against ``$metadata``.
The API key itself is not part of the profile: it is a secret extra (``api_key``) read by the hook.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"  # an OData identifier (entity set, property, enum member)
_NAMESPACE = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
_HEADER = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"  # an HTTP header name (RFC 9110 token)

# What the invoice export calls each line field (the names sync/invoices/booking.py reads) ->
# the profile setting that names it on the wire.
LINE_FIELD_SETTINGS = {
    "InvoiceLineId": "line_id_field",
    "InvoiceHeaderId": "line_header_field",
    "AmountExclVat": "line_amount_field",
    "VatCodeId": "line_vat_code_field",
    "VatPercentage": "line_vat_percentage_field",
    "VatAmount": "line_vat_amount_field",
    "GLAccountRevenue": "line_revenue_account_field",
    "CostCenterId": "line_cost_center_field",
    "ItemCompanyId": "line_item_field",
}


class QicsProfile(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    # -- invoice lines --------------------------------------------------------------------------
    # The entity set the export reads invoice lines from. Evidence: the V3 help page of InvoiceLine
    # lists exactly 8 properties (no header id, amount, VAT, GL or cost center); OverviewInvoiceLine
    # carries InvoiceHeaderId (help page GET-V3-odata-OverviewInvoiceLine, research notes B.6).
    invoice_line_set: str = Field("OverviewInvoiceLine", pattern=_NAME)
    # The line's own key (documented on both InvoiceLine and OverviewInvoiceLine).
    line_id_field: str = Field("InvoiceLineId", pattern=_NAME)
    # The invoice a line belongs to (documented on OverviewInvoiceLine: "InvoiceHeaderId").
    line_header_field: str = Field("InvoiceHeaderId", pattern=_NAME)
    # Assumption: the visible help page of OverviewInvoiceLine is cut off after ItemCompanyId,
    # before any amount, VAT, revenue-account or cost-center field; these five names are ours.
    line_amount_field: str = Field("AmountExclVat", pattern=_NAME)  # net amount (assumption)
    line_vat_code_field: str = Field("VatCodeId", pattern=_NAME)  # VatCode id (assumption)
    line_vat_percentage_field: str = Field("VatPercentage", pattern=_NAME)  # (assumption)
    line_vat_amount_field: str = Field("VatAmount", pattern=_NAME)  # (assumption)
    # (assumption; ItemCompany's documented revenue account is called GLAccountRevenue)
    line_revenue_account_field: str = Field("GLAccountRevenue", pattern=_NAME)
    line_cost_center_field: str = Field("CostCenterId", pattern=_NAME)  # CostCenter id (assumption)
    # The line's item (documented on OverviewInvoiceLine: "ItemCompanyId").
    line_item_field: str = Field("ItemCompanyId", pattern=_NAME)

    # -- $filter literals -----------------------------------------------------------------------
    # Enum literals: "qualified" = Namespace.Type'Value', which OData 4.0 requires (spec ABNF
    # `enum = [ qualifiedEnumTypeName ] SQUOTE enumValue SQUOTE`; OData/odata.net#2371 quotes the
    # spec); a bare 'Value' fails on ODL without prefix-free enums ("A binary operator with
    # incompatible types was detected", OData/WebApi#1480). "bare" = 'Value' (OData 4.01).
    enum_literal_style: Literal["qualified", "bare"] = "qualified"
    # The EDM namespace of Qics's enum types. Evidence: the V3 help pages name the enum types
    # QicsUnity.Api.Areas.V3.Models.<Type> (e.g. InvoiceLineState on OverviewInvoiceLine). Those
    # are CLR names; the EDM namespace normally equals them (the preflight reads $metadata).
    enum_namespace: str = Field("QicsUnity.Api.Areas.V3.Models", pattern=_NAMESPACE)
    # Dates compared with Edm.DateTimeOffset properties (InvoiceDate, ...): "datetime" =
    # 2026-09-30T00:00:00Z, valid on every ODL version; "date" = 2026-09-30, refused by ODL 7
    # before OData/WebApi PR #1733 ("No coercion operator is defined between types
    # 'Microsoft.OData.Edm.Date' and 'System.Nullable`1[System.DateTimeOffset]'", PR #1474).
    date_literal_style: Literal["datetime", "date"] = "datetime"

    # -- paging ---------------------------------------------------------------------------------
    # Records per page the service returns when it pages (assumption: no figure is documented;
    # the emulator's 100). A page this full without a next link is refused as a silent cut
    # (ProtocolError); 0 switches the check off. The hook follows both @odata.nextLink (v4) and
    # odata.nextLink (v3) whatever this says.
    server_page_size: int = Field(100, ge=0)

    # -- invoices -------------------------------------------------------------------------------
    # Route of an invoice's PDF, relative to the host; {key} = InvoiceHeaderId. Assumption: no
    # PDF endpoint is documented (research notes B.6).
    invoice_pdf_path: str = "/api/V3/odata/Invoice({key})/Pdf"
    # InvoiceHeaderState of an invoice ready for the books. Assumption: the enum's values are not
    # documented; "processed" ("verwerkt") is how every Qics connector article names it.
    invoice_processed_state: str = Field("Processed", pattern=_NAME)
    # EntityState.EntityType of an invoice. Assumption: only "General" is documented.
    invoice_entity_type: str = Field("Invoice", pattern=_NAME)
    # InvoiceHeaderType of a credit note (booked negative). Assumption: the enum's values are not
    # documented (research notes B.6); the preflight reads them from $metadata.
    credit_note_type: str = Field("CreditNote", pattern=_NAME)

    # -- authentication -------------------------------------------------------------------------
    # How the client authenticates at the token endpoint: "body" (client_id/client_secret form
    # fields) or "basic" (HTTP Basic). Assumption: the documented token request stops at
    # "POST https"; RFC 6749 §2.3.1 makes Basic the scheme a server must support, so "basic" is
    # the first thing to try if the token endpoint answers invalid_client.
    oauth_client_auth: Literal["body", "basic"] = "body"
    # Header carrying an API key on every request (the key: secret extra ``api_key``). Evidence:
    # an older revision of the REST API article says every client application identifies itself
    # with an API key issued by Qics; the header name was cut off. None = no API key header.
    api_key_header: str | None = Field(None, pattern=_HEADER)

    @field_validator("invoice_pdf_path")
    @classmethod
    def _pdf_path(cls, value: str) -> str:
        if not value.startswith("/") or value.count("{key}") != 1 or "://" in value:
            raise ValueError("invoice_pdf_path must be a path on the Qics host with one {key}")
        return value

    @field_validator("api_key_header", mode="before")
    @classmethod
    def _empty_header(cls, value):
        return None if value in ("", None) else value

    @classmethod
    def from_extras(cls, extras: dict) -> QicsProfile:
        return cls.model_validate({name: value for name, value in extras.items() if name in cls.model_fields})

    def line_fields(self) -> dict[str, str]:
        """Our name of each invoice-line field -> its name on the wire."""
        return {ours: getattr(self, setting) for ours, setting in LINE_FIELD_SETTINGS.items()}

    def pdf_path(self, key: int) -> str:
        return self.invoice_pdf_path.replace("{key}", str(int(key)))


DEFAULT_PROFILE = QicsProfile()
