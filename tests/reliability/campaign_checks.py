"""The fault campaign's staged situations (what people and King itself do to the books) and its
invoice invariants, identified by our booking marker, never by FACT (King may renumber it)."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

from king_qics.sync.invoices import booking_marker, invoice_day
from king_qics.sync.invoices.identity import marker_of

COMPANY = 1


def _hand_row(invoice: dict, debtor: int, grprow: int, rg: int, **changes) -> dict:
    day = invoice_day(invoice["InvoiceDate"])
    row = {
        "DAGB": 70,
        "JR": day.year,
        "PN": day.month,
        "RG": rg,
        "GRPROW": grprow,
        "DAT": day.isoformat(),
        "REK": debtor,
        "DEB": debtor,
        "TEGREK": 8000,
        "BTW": 1,
        "BEDRBOEK": invoice["TotalAmountExclVat"],
        "BEDRBTW": invoice["TotalVatAmount"],
        "FACT": invoice["InvoiceNumber"],
        "BOEKSTUK": invoice["InvoiceNumber"],
        "OMSCHR": "Handmatig geboekt",
        "PRG": "HAND",
    }
    return {**row, **changes}


def stage_people(fixture: dict) -> dict:
    """Bookings made in King before the campaign, and Qics numbers with stray spaces:
    - ``stranger``: a hand booking with an invoice's number but another debtor and amount;
    - ``foreign``: this program's booking of another Qics company's invoice with the same number,
      debtor, date and total (its marker names the other invoice);
    - ``hand``: a hand booking that matches an invoice exactly (adopted, not booked again);
    - ``spaced``: invoices whose number Qics holds with a leading space and a trailing NBSP.
    Returns {situation: [invoice ids]} and {situation: King booking key}."""
    qics, king = fixture["qics"]["entities"], fixture["king"]["administrations"][0]["tables"]
    codes = {str(c["CustomerCompanyId"]): int(c["CustomerCode"]) for c in qics["CustomerCompany"]}
    invoices = [
        i
        for i in qics["Invoice"]
        if str(i["CompanyId"]) == str(COMPANY) and Decimal(i["TotalAmountInclVat"]) > 0 and i["InvoiceNumber"]
    ]
    stranger, foreign, hand, *rest = invoices
    other_debtor = next(
        code for code in codes.values() if code != codes[stranger["InvoiceCustomerCompanyId"]]
    )
    king.setdefault("BOE", [])
    rows = [
        _hand_row(stranger, other_debtor, 9001, 90001, BEDRBOEK="10.00", BEDRBTW="2.10"),
        _hand_row(foreign, codes[foreign["InvoiceCustomerCompanyId"]], 9002, 90002, PRG="CSW"),
        _hand_row(hand, codes[hand["InvoiceCustomerCompanyId"]], 9003, 90003),
    ]
    rows[1]["OPM"] = booking_marker(2, 424242)
    king["BOE"].extend(rows)
    for invoice in rest[:2]:
        invoice["InvoiceNumber"] = f" {invoice['InvoiceNumber']}\u00a0"
    keys = {
        name: f"70;{r['JR']};{r['PN']};{r['RG']}"
        for name, r in zip(("stranger", "foreign", "hand"), rows, strict=True)
    }
    ids = {
        "stranger": [int(stranger["InvoiceHeaderId"])],
        "foreign": [int(foreign["InvoiceHeaderId"])],
        "hand": [int(hand["InvoiceHeaderId"])],
        "spaced": [int(i["InvoiceHeaderId"]) for i in rest[:2]],
    }
    return {"ids": ids, "keys": keys}


def invoice_invariants(king: dict, qics: dict, ledger_rows, staged: dict) -> dict:
    """Every processed invoice booked once (ours by marker, or the matching hand booking adopted):
    one booking, one PDF, rows summing to its total, marked once in Qics and in the ledger. The near
    matches (stranger, foreign) are failing with a reason naming the King booking, never adopted."""
    invoices = {
        int(i["InvoiceHeaderId"]): i for i in qics["entities"]["Invoice"] if str(i["CompanyId"]) == "1"
    }
    near = set(staged["ids"]["stranger"] + staged["ids"]["foreign"])
    hand_id = staged["ids"]["hand"][0]
    ours: dict[int, set[int]] = defaultdict(set)
    rows_of: dict[int, list[dict]] = defaultdict(list)
    unexpected = []
    for row in king["tables"]["BOE"]:
        rows_of[row["GRPROW"]].append(row)
        owner = marker_of(row.get("OPM") or "")
        if owner and owner[0] == COMPANY:
            if owner[1] not in invoices:
                unexpected.append(row["GRPROW"])
            ours[owner[1]].add(row["GRPROW"])
    docs = Counter(d["GRPROW"] for d in king.get("documents", []))
    marks = Counter(int(s["EntityId"]) for s in qics["entities"].get("EntityState", []) if not s["IsError"])
    ledger = {int(row.invoice_id): row for row in ledger_rows}
    stranger_keys = {staged["keys"]["stranger"], staged["keys"]["foreign"]}
    adopted_not_ours = sorted(i for i, row in ledger.items() if row.booking_key in stranger_keys)
    lost, near_not_failing = [], []
    for invoice_id, invoice in invoices.items():
        row = ledger.get(invoice_id)
        if invoice_id in near:
            reason = (row.last_error or "") if row is not None else ""
            if row is None or row.state != "selected" or not reason.startswith("King has FACT"):
                near_not_failing.append(invoice_id)
            continue
        groups = ours[invoice_id] or ({9003} if invoice_id == hand_id else set())
        if len(groups) != 1 or row is None or row.state != "marked" or not marks[invoice_id]:
            lost.append(invoice_id)
            continue
        (group,) = groups
        total = sum(Decimal(str(r["BEDRBOEK"])) + Decimal(str(r["BEDRBTW"])) for r in rows_of[group])
        assert total == Decimal(invoice["TotalAmountInclVat"]), invoice_id
        assert docs[group] == 1, f"invoice {invoice_id}: not exactly one PDF"
        assert row.booking_key and row.booking_key.split(";")[0] == "70"
    return {
        "exportable": len(invoices),
        "duplicates": sum(max(len(groups) - 1, 0) for groups in ours.values()) + len(ours[hand_id]),
        "unexpected": unexpected,
        "double_marks": sum(n - 1 for n in marks.values() if n > 1),
        "adopted_not_ours": adopted_not_ours,
        "near_matches_not_failing": near_not_failing,
        "lost": lost,
        "renumbered_by_king": sum(
            1 for groups in ours.values() for g in groups if not str(rows_of[g][0]["FACT"]).startswith("N")
        ),
    }
