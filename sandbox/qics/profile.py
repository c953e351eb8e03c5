"""The wire profiles the Qics emulator can run in: ``default`` (what the public evidence says the real
service does) and ``alt`` (a plausible other service, so that the hook's wire profile is exercised).

A profile changes only the wire: literal styles in ``$filter``, the next-link name, under which name
and with which field names the invoice lines are served, the PDF route, the processed-state value,
how the token endpoint authenticates clients, an API-key header. The stored data stays the same:
the alt profile serves it through a rename layer (sets, fields, enum members), so one running
emulator can switch (``POST /_sandbox/profile``) without reloading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from sandbox.qics.schema import ENUMS, NAMESPACE, SETS, EntitySet

API_KEY = "sandbox-api-key"  # the key an API-key profile accepts (fixture clients may add their own)


@dataclass(frozen=True)
class WireProfile:
    name: str
    enum_literals: str = "qualified"  # "qualified": Namespace.Type'V' only; "bare": 'V' only
    bare_dates: bool = False  # a bare date against an Edm.DateTimeOffset property is accepted
    next_link: str = "@odata.nextLink"
    pdf_route: str = "/api/V3/odata/Invoice({key})/Pdf"
    client_auth: str = "body"  # "body" or "basic": the only way the token endpoint accepts
    api_key_header: str | None = None
    # read-only entity sets served under another name, with renamed fields: set -> (name, fields)
    renamed_sets: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    # enum members served under another name: enum type -> {stored member: served member}
    renamed_members: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.renamed_sets:
            if SETS[name].creatable or SETS[name].writable:
                raise ValueError(f"profile {self.name}: only read-only sets can be renamed ({name})")

    @cached_property
    def _served(self) -> dict[str, str]:
        """Served set name -> stored set name."""
        out = {name: name for name in SETS if name not in self.renamed_sets}
        out.update({served: stored for stored, (served, _) in self.renamed_sets.items()})
        return out

    def stored_set(self, served: str) -> str | None:
        return self._served.get(served)

    def served_sets(self) -> list[str]:
        return list(self._served)

    @cached_property
    def _views(self) -> dict[str, EntitySet]:
        views = {}
        for served, stored in self._served.items():
            entity = SETS[stored]
            renames = self.renamed_sets.get(stored, (stored, {}))[1]
            views[served] = EntitySet(
                served,
                renames.get(entity.key, entity.key),
                {renames.get(n, n): kind for n, kind in entity.fields.items()},
                enums={renames.get(n, n): t for n, t in entity.enums.items()},
                writable=entity.writable,
                creatable=entity.creatable,
            )
        return views

    def view(self, served: str) -> EntitySet:
        """The entity set as served: its name, field names and enums in this profile."""
        return self._views[served]

    def members(self, enum_type: str) -> tuple[str, ...]:
        renames = self.renamed_members.get(enum_type, {})
        return tuple(renames.get(m, m) for m in ENUMS[enum_type])

    def needs_view(self, stored: str) -> bool:
        entity = SETS[stored]
        return stored in self.renamed_sets or any(t in self.renamed_members for t in entity.enums.values())

    def served_record(self, stored: str, record: dict) -> dict:
        """A stored record as this profile serves it (renamed fields and enum members)."""
        entity = SETS[stored]
        renames = self.renamed_sets.get(stored, (stored, {}))[1]
        out = {}
        for name, value in record.items():
            enum_type = entity.enums.get(name)
            if enum_type in self.renamed_members and value is not None:
                value = self.renamed_members[enum_type].get(value, value)
            out[renames.get(name, name)] = value
        return out

    @cached_property
    def pdf_pattern(self) -> re.Pattern:
        return re.compile("^" + re.escape(self.pdf_route).replace(r"\{key\}", r"(?P<key>[^/()]+)") + "$")

    def describe(self) -> dict:
        return {
            "name": self.name,
            "enum_literals": self.enum_literals,
            "enum_namespace": NAMESPACE,
            "bare_dates": self.bare_dates,
            "next_link": self.next_link,
            "pdf_route": self.pdf_route,
            "client_auth": self.client_auth,
            "api_key_header": self.api_key_header,
            "invoice_line_set": self.renamed_sets.get("OverviewInvoiceLine", ("OverviewInvoiceLine",))[0],
            "renamed_sets": {k: {"name": v[0], "fields": v[1]} for k, v in self.renamed_sets.items()},
            "renamed_members": self.renamed_members,
        }


PROFILES = {
    "default": WireProfile("default"),
    "alt": WireProfile(
        "alt",
        enum_literals="bare",
        bare_dates=True,
        next_link="odata.nextLink",
        pdf_route="/api/V3/invoices/{key}/pdf",
        client_auth="basic",
        api_key_header="ApiKey",
        renamed_sets={
            "OverviewInvoiceLine": (
                "SalesInvoiceLine",
                {
                    "InvoiceLineId": "LineId",
                    "InvoiceHeaderId": "InvoiceId",
                    "AmountExclVat": "NetAmount",
                    "VatCodeId": "VatId",
                    "VatPercentage": "VatRate",
                    "VatAmount": "VatTotal",
                    "GLAccountRevenue": "RevenueAccount",
                    "CostCenterId": "CostCentreId",
                },
            )
        },
        renamed_members={
            "InvoiceHeaderState": {"Processed": "Final"},
            "InvoiceHeaderType": {"CreditNote": "Credit"},
        },
    ),
}

# The hook's connection extras that match each profile (what the alt test and the README table say).
MATCHING_EXTRAS = {
    "default": {},
    "alt": {
        "enum_literal_style": "bare",
        "date_literal_style": "date",
        "invoice_line_set": "SalesInvoiceLine",
        "line_id_field": "LineId",
        "line_header_field": "InvoiceId",
        "line_amount_field": "NetAmount",
        "line_vat_code_field": "VatId",
        "line_vat_percentage_field": "VatRate",
        "line_vat_amount_field": "VatTotal",
        "line_revenue_account_field": "RevenueAccount",
        "line_cost_center_field": "CostCentreId",
        "invoice_pdf_path": "/api/V3/invoices/{key}/pdf",
        "invoice_processed_state": "Final",
        "credit_note_type": "Credit",
        "oauth_client_auth": "basic",
        "api_key_header": "ApiKey",
        "api_key": API_KEY,
    },
}


def profile_named(name: str | None) -> WireProfile:
    try:
        return PROFILES[name or "default"]
    except KeyError:
        raise ValueError(f"unknown Qics profile {name!r}; known: {', '.join(PROFILES)}") from None
