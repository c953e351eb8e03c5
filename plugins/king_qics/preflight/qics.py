"""The preflight's Qics checks: an access token from the refresh token, the company, one query of
each $filter form the sync sends, and the PDF route of one processed invoice. Read-only (a token
refresh rotates the chain the sync keeps in the state store, exactly as a sync run does)."""

from __future__ import annotations

from king_qics.errors import KingQicsError
from king_qics.hooks.qics import odata_filter
from king_qics.preflight import Check, differs, ok, unknown

Q = "Qics"


def qics_checks(adm, qics) -> list[Check]:
    try:
        qics.tokens.access_token()
    except KingQicsError as exc:
        return [
            differs(Q, "token refresh", f"an access token vs {exc}", "connection; OAuth (README Connections)")
        ]
    checks = [
        ok(
            Q,
            "token refresh",
            "an access token from the stored or given refresh token",
            "OAuth behaviour rows 4-6",
        )
    ]
    checks.append(_company(adm, qics))
    checks += _queries(adm, qics)
    return checks


def _company(adm, qics) -> Check:
    try:
        found = list(qics.iter_records("Company", filter=odata_filter({"CompanyId": adm.company_id})))
    except KingQicsError as exc:
        return differs(Q, "company", f"company {adm.company_id} vs {exc}", "qics_company_id (config)")
    if not found:
        return differs(
            Q, "company", f"company {adm.company_id} vs not visible to this user", "qics_company_id"
        )
    return ok(Q, "company", f"{adm.company_id} {found[0].get('Name')}", "qics_company_id (config)")


def _queries(adm, qics) -> list[Check]:
    """The invoice selection exactly as the export sends it, then one invoice's PDF."""
    from king_qics.sync.invoices.selection import processed_filter

    query = qics.filter_text(processed_filter(adm, qics))
    try:
        invoices = list(qics.iter_records("Invoice", filter=query, top=1))
    except KingQicsError as exc:
        return [differs(Q, "invoice query", f"$filter={query} vs {exc}", "enum and date literal settings")]
    checks = [ok(Q, "invoice query", f"$filter={query} answered", "enum and date literal settings")]
    if not invoices:
        checks.append(
            unknown(Q, "invoice PDF", "no processed invoice since the cutoff to try", "PDF route setting")
        )
        return checks
    key = invoices[0]["InvoiceHeaderId"]
    try:
        content = qics.invoice_pdf(key)
    except KingQicsError as exc:
        return [*checks, differs(Q, "invoice PDF", f"a PDF of invoice {key} vs {exc}", "PDF route setting")]
    if content is None:
        return [
            *checks,
            unknown(Q, "invoice PDF", f"invoice {key} has no PDF (HTTP 404)", "PDF route setting"),
        ]
    return [
        *checks,
        ok(Q, "invoice PDF", f"invoice {key}: {len(content):,} bytes of PDF", "PDF route setting"),
    ]
