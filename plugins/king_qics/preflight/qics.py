"""The preflight's Qics checks: a token refresh (and whether the service rotates refresh tokens), the
company, ``$metadata`` against the wire profile (preflight.qics_metadata), one query of each $filter
form the sync sends, how the service pages, and the PDF route of one processed invoice. Read-only
(the refresh rotates the chain the sync keeps in the state store, exactly as a sync run does)."""

from __future__ import annotations

from king_qics.catalog import ENTITY_NAMES
from king_qics.errors import KingQicsError
from king_qics.hooks.qics import odata_filter
from king_qics.mapping import load_mapping
from king_qics.preflight import Check, differs, ok, unknown
from king_qics.preflight.qics_metadata import metadata_checks

Q = "Qics"
OAUTH = "oauth_client_auth, api_key_header; Qics rows 4-6"


def qics_checks(adm, qics) -> list[Check]:
    checks = _token(qics)
    if checks[0].result != "ok":
        return checks
    checks.append(_company(adm, qics))
    checks += metadata_checks(adm, qics)
    checks += _master_data_queries(adm, qics)
    checks += _invoice_queries(adm, qics)
    return checks


def _token(qics) -> list[Check]:
    """A refresh now (not a cached access token): the request the sync makes once an hour."""
    try:
        qics.tokens.renew(qics.tokens.access_token())
    except KingQicsError as exc:
        return [differs(Q, "token refresh", f"an access token vs {exc}", OAUTH)]
    grant = qics.tokens.last_grant
    checks = [ok(Q, "token refresh", "an access token from the stored or given refresh token", OAUTH)]
    if grant is None:  # another process refreshed meanwhile: its answer is not ours to see
        return [*checks, unknown(Q, "token rotation", "refreshed by another process", "Qics row 5")]
    rotation = "a new refresh token (single-use, kept)" if grant.rotated else "the same refresh token back"
    lifetime = (
        f"expires_in {grant.expires_in:g} s"
        if grant.expires_in is not None
        else "no expires_in: 3600 s assumed"
    )
    row = ok if grant.expires_in is not None else unknown
    return [*checks, row(Q, "token rotation", f"{rotation}; {lifetime}", "Qics rows 5-6")]


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


def _master_data_queries(adm, qics) -> list[Check]:
    """Each set the mappings write, read the way the first sync reads it (the company's records)."""
    checks = []
    for entity in ENTITY_NAMES:
        mapping = load_mapping(entity)
        query = mapping.company_filter(adm)
        try:
            found = list(qics.iter_records(mapping.qics_entity, filter=query, top=1))
        except KingQicsError as exc:
            checks.append(
                differs(Q, f"read {mapping.qics_entity}", f"$filter={query} vs {exc}", "Qics rows 16-18")
            )
            continue
        what = "records there" if found else "none yet"
        checks.append(ok(Q, f"read {mapping.qics_entity}", f"$filter={query}: {what}", "Qics rows 16-18"))
    return checks


def _invoice_queries(adm, qics) -> list[Check]:
    """The invoice selection exactly as the export sends it, how the service pages it, one invoice's
    lines, the look-up of its marks, and its PDF."""
    from king_qics.sync.invoices.selection import processed_filter

    selection = processed_filter(adm, qics)
    query = qics.filter_text(selection)
    verifies = "invoice_processed_state, enum and date literal settings; Qics rows 15, 18"
    try:
        invoices = list(qics.iter_records("Invoice", filter=selection, top=1))
    except KingQicsError as exc:
        return [differs(Q, "invoice query", f"$filter={query} vs {exc}", verifies)]
    checks = [ok(Q, "invoice query", f"$filter={query} answered", verifies), _paging(adm, qics)]
    if not invoices:
        absent = "no processed invoice since the cutoff to try"
        checks += [
            unknown(Q, name, absent, "invoice_line_set; invoice_pdf_path") for name in ("lines", "PDF")
        ]
        return checks
    invoice_id = invoices[0]["InvoiceHeaderId"]
    checks += [_lines(qics, invoice_id), _marks(adm, qics, invoice_id), _pdf(qics, invoice_id)]
    return checks


def _paging(adm, qics) -> Check:
    """The first page of an unbounded read: its size against server_page_size, and its next link."""
    verifies = "server_page_size; Qics row 16"
    size = qics.profile.server_page_size
    try:
        count, next_link = qics.first_page("Invoice", odata_filter({"CompanyId": adm.company_id}))
    except KingQicsError as exc:
        return differs(Q, "paging", f"a first page of Invoice vs {exc}", verifies, blocking=False)
    if next_link is None:
        return unknown(Q, "paging", f"all {count} invoices on one page (no next link to see)", verifies)
    if size and count != size:
        return differs(Q, "paging", f"pages of {size} vs {count} ({next_link})", verifies, blocking=False)
    return ok(Q, "paging", f"pages of {count} with {next_link}", verifies)


def _lines(qics, invoice_id: int) -> Check:
    verifies = "invoice_line_set, line_*_field; Qics row 33"
    try:
        lines = qics.invoice_lines([invoice_id])[invoice_id]
    except KingQicsError as exc:
        return differs(Q, "lines", f"the lines of invoice {invoice_id} vs {exc}", verifies)
    if not lines:
        return differs(Q, "lines", f"lines of invoice {invoice_id} vs none", verifies)
    missing = sorted({name for line in lines for name in qics.profile.line_fields() if name not in line})
    if missing:
        return differs(Q, "lines", f"{', '.join(missing)} vs absent from its lines", verifies)
    return ok(Q, "lines", f"invoice {invoice_id}: {len(lines)} line(s), every field named", verifies)


def _marks(adm, qics, invoice_id: int) -> Check:
    """The look-up of an invoice's EntityStates, by the natural key the export marks with."""
    from king_qics.sync.invoices import DATA_SOURCE

    verifies = "invoice_entity_type, enum literals; docs/invoice_export.md"
    natural_key = {
        "CompanyId": adm.company_id,
        "EntityType": qics.profile.invoice_entity_type,
        "EntityId": int(invoice_id),
        "DataSource": DATA_SOURCE,
    }
    query = qics.filter_text(odata_filter(natural_key))
    try:
        found = list(qics.iter_records("EntityState", filter=odata_filter(natural_key), top=5))
    except KingQicsError as exc:
        return differs(Q, "marks look-up", f"$filter={query} vs {exc}", verifies)
    return ok(Q, "marks look-up", f"$filter={query}: {len(found)} mark(s)", verifies)


def _pdf(qics, invoice_id: int) -> Check:
    verifies = "invoice_pdf_path; Qics row 35"
    try:
        content = qics.invoice_pdf(invoice_id)
    except KingQicsError as exc:
        return differs(Q, "PDF", f"a PDF of invoice {invoice_id} vs {exc}", verifies)
    if content is None:
        return unknown(Q, "PDF", f"invoice {invoice_id}: HTTP 404 (no PDF, or another route)", verifies)
    return ok(Q, "PDF", f"invoice {invoice_id}: {len(content):,} bytes of PDF", verifies)
