"""The preflight's King checks: a session, GetAdmInfo, every table and field the sync selects, the
booking look-up, the sales journal, the accounts the config names; and, only when asked, a write
probe on a test journal (one small booking with a PDF, read back, deleted)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pendulum

from king_qics.catalog import ENTITY_NAMES, TIMEZONE
from king_qics.errors import AuthenticationError, KingQicsError
from king_qics.hooks.king.bookings import BOOKING_FIELDS
from king_qics.mapping import load_mapping
from king_qics.preflight import Check, differs, ok, unknown
from king_qics.sync.invoices.selection import period_dates

K = "King"
# A one-page PDF (the write probe's attachment): the smallest file a PDF reader opens.
PROBE_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>"
    b"endobj 3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def king_checks(adm, king, *, probe_journal: int | None = None) -> list[Check]:
    profile = king.profile
    try:
        king.login()
    except (AuthenticationError, KingQicsError) as exc:
        return [differs(K, "login", f"a session vs {exc}", "partner key, environment code; soap_version")]
    checks = [ok(K, "login", f"a session (SOAP {king.soap_version})", "connection; soap_version")]
    checks += _adm_info(king)
    checks.append(_period_dates(king, profile))
    checks += _tables(adm, king)
    checks.append(_booking_look_up(adm, king))
    checks += _journal(adm, king)
    checks += _accounts(adm, king)
    if probe_journal is not None:
        checks += write_probe(adm, king, probe_journal)
    return checks


def _guarded(name: str, verifies: str, blocking: bool = True):
    """Run one check; a King error becomes a differing row naming what was refused."""

    def wrap(function):
        def run(*args) -> Check:
            try:
                return function(*args)
            except KingQicsError as exc:
                return differs(K, name, f"an answer vs {exc}", verifies, blocking)

        return run

    return wrap


def _adm_info(king) -> list[Check]:
    try:
        info = king.get_adm_info(
            {
                "BASFIN": ["AANTPER", "ONDERDEB", "BOVENDEB", "ONDERGRB", "BOVENGRB"],
                "PERIODEINFO": ["JRAFGESL", "PNAFGESL", "JRAFGESLGEBR", "PNAFGESLGEBR"],
            }
        )
    except KingQicsError as exc:
        return [differs(K, "GetAdmInfo", f"BASFIN and PERIODEINFO vs {exc}", "King rows 19-21")]
    basfin, closed = info.get("BASFIN", {}), info.get("PERIODEINFO", {})
    ranges = (
        f"{basfin.get('AANTPER')} periods; debtors {basfin.get('ONDERDEB')}-{basfin.get('BOVENDEB')}, "
        f"accounts {basfin.get('ONDERGRB')}-{basfin.get('BOVENGRB')}"
    )
    checks = [ok(K, "GetAdmInfo BASFIN", ranges, "King rows 19-20")]
    if not closed:
        return [*checks, differs(K, "closed periods", "PERIODEINFO JRAFGESL... vs nothing", "rows 20-21")]
    upto = (
        f"definitively up to {closed.get('JRAFGESL')}/{closed.get('PNAFGESL')}, "
        f"for users up to {closed.get('JRAFGESLGEBR')}/{closed.get('PNAFGESLGEBR')}"
    )
    return [*checks, ok(K, "closed periods", upto, "King rows 20-21")]


def _period_dates(king, profile) -> Check:
    verifies = "period_dates_table and its four field settings"
    if not profile.period_dates_table:
        return unknown(
            K, "period dates", "none asked (period_dates_table empty): the calendar decides", verifies
        )
    periods = period_dates(king)
    if not periods:
        return differs(
            K,
            "period dates",
            f"{profile.period_dates_table} with periods vs none: the calendar decides "
            "(a broken fiscal year or 13 periods would book into wrong periods)",
            verifies,
            blocking=False,
        )
    today = pendulum.now(TIMEZONE).date()
    current = next((p for p in periods if p.start <= today <= p.end), None)
    where = (
        f"today is {current.year}/{current.period} ({current.start} - {current.end})"
        if current
        else "today in none"
    )
    return ok(K, "period dates", f"{len(periods)} periods; {where}", verifies)


def _tables(adm, king) -> list[Check]:
    """Every King table the mappings and the invoice export read, with exactly their fields."""
    wanted: dict[str, list[str]] = {}
    for entity in ENTITY_NAMES:
        mapping = load_mapping(entity)
        wanted.setdefault(mapping.king_table_for(adm), []).extend(mapping.king_fields)
        for table, fields in mapping.extra_tables.items():
            wanted.setdefault(table, []).extend(fields)
    for table, fields in (("BTW", ["NR", "PERC"]), ("GRB", ["NR"]), ("KPL", ["NR"]), ("DEB", ["NR"])):
        wanted.setdefault(table, []).extend(fields)
    checks = []
    for table, fields in wanted.items():
        fields = list(dict.fromkeys(fields))
        checks.append(_table(king, table, fields))
    return checks


def _table(king, table: str, fields: list[str]) -> Check:
    verifies = "the mappings' King fields (docs/mapping.md); King rows 23-28"
    try:
        rows, _ = next(king.read_records(table, fields, max_result=1, page_size=1))
    except KingQicsError as exc:
        return differs(K, f"table {table}", f"{', '.join(fields)} vs {exc}", verifies)
    return ok(
        K, f"table {table}", f"{len(fields)} fields selectable ({'a record' if rows else 'empty'})", verifies
    )


@_guarded("booking look-up", "orderby_separator, booking_marker_field; docs/invoice_export.md")
def _booking_look_up(adm, king) -> Check:
    year = pendulum.now(TIMEZONE).year
    king.find_bookings(adm.sales_journal, (year, year + 1), fact="KQS-PREFLIGHT-NONE")
    king.find_bookings(adm.sales_journal, (year, year + 1), marker="king-qics-sync: preflight")
    fields = ", ".join([*BOOKING_FIELDS, king.profile.booking_marker_field])
    return ok(
        K,
        "booking look-up",
        f"BOE by FACT and by marker, ordered by several fields ({fields})",
        "orderby_separator, booking_marker_field; docs/invoice_export.md",
    )


def _journal(adm, king) -> list[Check]:
    verifies = "sales_journal (config); King rows 50, 54"
    try:
        frame = king.read_table(
            "DAGBOEK", ["NR", "SRT", "FACT", "BLOK"], where=[("NR", "=", adm.sales_journal)]
        )
    except KingQicsError as exc:
        return [differs(K, "sales journal", f"DAGBOEK {adm.sales_journal} vs {exc}", verifies)]
    if not len(frame):
        return [differs(K, "sales journal", f"DAGBOEK {adm.sales_journal} vs no such journal", verifies)]
    row = frame.iloc[0]
    kind = ok(K, "sales journal", f"DAGBOEK {adm.sales_journal}, SRT {row['SRT']}", verifies)
    if row["SRT"] != "V":
        kind = differs(K, "sales journal", f"SRT V (sales) vs SRT {row['SRT']!r}", verifies)
    if bool(row["BLOK"]):
        kind = differs(K, "sales journal", "an open journal vs blocked (BLOK)", verifies)
    numbering = unknown(
        K,
        "FACT counter",
        f"the FACT counter is {row['FACT'] or 'empty'}; whether the journal numbers "
        "invoices itself shows only in the write probe",
        "King row 54",
    )
    return [kind, numbering]


def _accounts(adm, king) -> list[Check]:
    checks = []
    account = adm.defaults.gl_account_revenue
    if account:
        found = len(king.read_table("GRB", ["NR"], where=[("NR", "=", int(account))]))
        make = ok if found else differs
        checks.append(
            make(
                K,
                "revenue account",
                f"GRB {account}" + ("" if found else " vs missing"),
                "defaults.gl_account_revenue",
            )
        )
    if adm.defaults.customer_vat_codes:
        codes = {int(nr) for nr in king.read_table("BTW", ["NR"])["NR"].dropna()}
        missing = sorted(set(adm.defaults.customer_vat_codes.values()) - codes)
        make = differs if missing else ok
        detail = (
            f"BTW {missing} vs missing"
            if missing
            else f"BTW {sorted(adm.defaults.customer_vat_codes.values())}"
        )
        checks.append(make(K, "customer VAT codes", detail, "defaults.customer_vat_codes"))
    checks.append(_article_vat_letters(adm, king))
    return checks


@_guarded("article VAT codes", "items.yaml VatCodeId; defaults.item_vat_codes; King row 40")
def _article_vat_letters(adm, king) -> Check:
    """Every VAT letter the articles hold names exactly one BTW row (through the items mapping's
    ``via``), or is named in defaults.item_vat_codes: else those articles fail."""
    from king_qics.mapping import columns as col

    verifies = "items.yaml VatCodeId; defaults.item_vat_codes; King row 40"
    items = load_mapping("items")
    lookup = items.fields["VatCodeId"].lookup
    via = lookup.via
    held = col.key_text(king.read_table(items.king_table_for(adm), [lookup.from_])[lookup.from_])
    letters = sorted(set(held.dropna()))
    table = king.read_table(via.table, [via.key, via.on])
    holders: dict[str, list[str]] = {}
    for code, key in zip(col.key_text(table[via.on]), col.key_text(table[via.key]), strict=True):
        if code is not None:
            holders.setdefault(code, []).append(key)
    configured = adm.defaults.item_vat_codes
    unclear = [
        f"{letter}: {len(holders.get(letter, []))} {via.table} rows"
        for letter in letters
        if letter not in configured and len(holders.get(letter, [])) != 1
    ]
    if unclear:
        detail = f"one {via.table} row per letter vs {'; '.join(unclear)}"
        return differs(K, "article VAT codes", detail, verifies)
    found = ", ".join(f"{letter} -> {configured.get(letter) or holders[letter][0]}" for letter in letters)
    return ok(K, "article VAT codes", f"{via.table}.{via.on}: {found or 'no article holds one'}", verifies)


def write_probe(adm, king, journal: int) -> list[Check]:
    """One small booking with a PDF in ``journal`` (a test journal), read back, then deleted."""
    profile = king.profile
    marker = f"king-qics-sync preflight {uuid.uuid4().hex[:8]}"
    fact = f"KQSPROBE{pendulum.now('UTC'):%H%M%S}"
    try:
        row = _probe_row(adm, king, journal, fact, marker)
        posted = king.post_journal_entry([row], pdf=("preflight.pdf", PROBE_PDF, "king-qics-sync preflight"))
    except KingQicsError as exc:
        return [
            differs(K, "write probe", f"a booking in journal {journal} vs {exc}", "pdf_mechanism; rows 47-53")
        ]
    checks = [
        ok(K, "write probe", f"booked as {posted.key} in journal {journal}", "pdf_mechanism; rows 47-53")
    ]
    shape = "DAGB;JR;PN;RG" if posted.answered_key == posted.key else f"{posted.answered_key!r}"
    make = ok if posted.answered_key == posted.key else differs
    checks.append(make(K, "Primarykey", f"DAGB;JR;PN;RG vs {shape}", "King row 48", blocking=False))
    if posted.fact and posted.fact != fact:
        checks.append(
            differs(
                K,
                "FACT numbering",
                f"FACT {fact} kept vs King numbered it {posted.fact} "
                "(our bookings are then known by their marker)",
                "King row 54",
                blocking=False,
            )
        )
    else:
        checks.append(ok(K, "FACT numbering", "the FACT sent is kept", "King row 54"))
    found = king.find_bookings(journal, (row["JR"], row["JR"]), marker=marker)
    make = ok if [b.key for b in found] == [posted.key] else differs
    checks.append(
        make(
            K,
            "marker read-back",
            f"one booking with our {profile.booking_marker_field} vs {[b.key for b in found]}",
            "booking_marker_field",
        )
    )
    files = king.booking_files(posted.key)
    make = ok if any(f["content"] == PROBE_PDF for f in files) else differs
    checks.append(make(K, "PDF read-back", f"the PDF vs {len(files)} file(s)", "pdf_mechanism"))
    try:
        king.delete_journal_entry(posted.key)
        checks.append(
            ok(K, "probe removed", f"booking {posted.key} deleted", "DeleteJournaalpost", blocking=False)
        )
    except KingQicsError as exc:
        checks.append(
            differs(
                K, "probe removed", f"deleted vs {exc}: delete {posted.key} by hand", "DeleteJournaalpost"
            )
        )
    return checks


def _probe_row(adm, king, journal: int, fact: str, marker: str) -> dict:
    journals = king.read_table("DAGBOEK", ["NR", "SRT"], where=[("NR", "=", journal)])
    sales = len(journals) and journals.iloc[0]["SRT"] == "V"
    accounts = king.read_table("GRB", ["NR"])["NR"].dropna().astype(int).tolist()
    rek = int(king.read_table("DEB", ["NR"])["NR"].dropna().iloc[0]) if sales else accounts[0]
    today = pendulum.now(TIMEZONE).date()
    periods = period_dates(king)
    current = next((p for p in periods if p.start <= today <= p.end), None)
    year, period = (current.year, current.period) if current else (today.year, today.month)
    return {
        "DAGB": journal,
        "JR": year,
        "PN": period,
        "DAT": date(today.year, today.month, today.day),
        "REK": rek,
        "TEGREK": next(a for a in accounts if a != rek),
        "BEDRBOEK": Decimal("0.01"),
        "FACT": fact,
        "BOEKSTUK": fact,
        "OMSCHR": "king-qics-sync preflight",
        king.profile.booking_marker_field: marker,
    }
