"""Qics data built in code: the demo fixture (``--write-demo``) and generated data for benchmarks.

``python -m sandbox.qics.generate --write-demo`` rewrites the "qics" section of
sandbox/fixtures/demo.json and the invoice PDFs in sandbox/fixtures/pdfs/ (deterministic; amounts
consistent to the cent).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from sandbox import universe
from sandbox.qics.odata import utc_text
from sandbox.qics.pdf import text_pdf

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CENT = Decimal("0.01")
ITEM_KIND = {
    "ADV": ("Hour", "8000", "95.00"),
    "PM": ("Hour", "8010", "110.00"),
    "REIS": ("Expense", "8020", "0.23"),
    "BOEK": ("Other", "8020", "45.50"),
}
PERCENT = {str(nr): pct for nr, _, pct, _, _ in universe.VAT_CODES}


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class Builder:
    """Accumulates one "qics" fixture section with consistent ids."""

    def __init__(self) -> None:
        self.entities: dict[str, list[dict]] = {}
        self.ids: dict[str, int] = {}
        self.vat: dict[tuple[int, str], int] = {}
        self.items: dict[tuple[int, str], int] = {}
        self.item_records: dict[tuple[int, str], dict] = {}
        self.customers: dict[tuple[int, str], dict] = {}
        self.pdf_lines: dict[int, list[str]] = {}

    def add(self, entity: str, key: str, record: dict) -> dict:
        self.ids[entity] = self.ids.get(entity, 0) + 1
        record = {key: str(self.ids[entity]), **record}
        self.entities.setdefault(entity, []).append(record)
        return record

    def company(self, adm: dict) -> int:
        cid = adm["qics_company_id"]
        self.entities.setdefault("Company", []).append(
            {
                "CompanyId": str(cid),
                "Name": adm["name"],
                "Code": adm["qics_company_code"],
                "CurrencyId": "1",
                "InvoiceLanguage": "Dutch",
                "InvoiceNumberPrefix": adm["qics_company_code"][0],
            }
        )
        for nr, name, pct, _kind, _gl in universe.VAT_CODES:
            rec = self.add(
                "VatCode",
                "VatCodeId",
                {
                    "Code": str(nr),
                    "Name": name,
                    "Percentage": pct,
                    "ReverseCharge": nr == 3,
                    "IsDefault": nr == 1,
                    "IcpReturn": None,
                    "CompanyId": str(cid),
                },
            )
            self.vat[(cid, str(nr))] = int(rec["VatCodeId"])
        for code, name, _grp, vat_nr, _unit in universe.ITEMS:
            kind, gl, _price = ITEM_KIND[code]
            rec = self.add(
                "ItemCompany",
                "ItemCompanyId",
                {
                    "CompanyId": str(cid),
                    "ItemCode": code,
                    "Name": name,
                    "ItemType": kind,
                    "VatCodeId": str(self.vat[(cid, str(vat_nr))]),
                    "GLAccountRevenue": gl,
                    "WillBeInvoiced": True,
                    "AllowTimeEntry": kind == "Hour",
                    "AllowPriceModifications": True,
                    "IsActive": True,
                },
            )
            rec["ItemId"] = rec["ItemCompanyId"]  # one global item per item company here
            self.items[(cid, code)] = int(rec["ItemCompanyId"])
            self.item_records[(cid, code)] = rec
        return cid

    def customer(self, cid: int, code: str, name: str, city: str = "Groningen") -> dict:
        rec = self.add(
            "CustomerCompany",
            "CustomerCompanyId",
            {
                "CompanyId": str(cid),
                "CustomerCode": code,
                "Name": name[:50],
                "IsActive": True,
                "VisitAddressAddress1": "Stationsweg 1",
                "VisitAddressZipCode": "9700 AA",
                "VisitAddressCity": city,
                "VisitAddressCountryCode": "NL",
                "InvoiceAddressSameAsVisitAddress": True,
                "CustomerType": "Customer",
            },
        )
        self.customers[(cid, code)] = rec
        return rec

    def invoice(
        self,
        cid: int,
        customer: str,
        date: str,
        lines: list[tuple[str, str, str | None]],
        *,
        number: str | None,
        state: str = "Processed",
        kind: str = "Invoice",
        written_off: bool = False,
        original: dict | None = None,
        text: str = "",
    ) -> dict:
        """``lines``: (item code, quantity, price override or None)."""
        cust = self.customers[(cid, customer)]
        header_id = self.ids.get("Invoice", 0) + 1
        line_recs, total_excl, total_vat = [], Decimal(0), Decimal(0)
        for item, qty, price in lines:
            kind_, gl, default_price = ITEM_KIND[item]
            vat_nr = next(str(v) for c, _n, _g, v, _u in universe.ITEMS if c == item)
            pct = Decimal(PERCENT[vat_nr])
            price_d = Decimal(price or default_price)
            excl = money(Decimal(qty) * price_d)
            vat = money(excl * pct / 100)
            total_excl += excl
            total_vat += vat
            item_rec = self.item_records[(cid, item)]
            line_recs.append(
                {
                    "InvoiceHeaderId": str(header_id),
                    "InvoiceLineState": "Normal",
                    "InvoiceLineType2": kind_ if kind_ in ("Hour", "Expense") else "Manual",
                    "Origin": "TimeExpenseEntry" if kind_ in ("Hour", "Expense") else "Manual",
                    "Date": utc_text(date),
                    "ItemId": item_rec["ItemId"],
                    "ItemName": item_rec["Name"],
                    "ItemCompanyItemCode": item,
                    "ItemCompanyId": item_rec["ItemCompanyId"],
                    "Description": item_rec["Name"],
                    "Quantity": qty,
                    "Price": str(price_d),
                    "AmountExclVat": str(excl),
                    "VatCodeId": str(self.vat[(cid, vat_nr)]),
                    "VatPercentage": str(pct),
                    "VatAmount": str(vat),
                    "GLAccountRevenue": gl,
                    "CostCenterId": None,
                }
            )
        due = (dt.date.fromisoformat(date) + dt.timedelta(days=14)).isoformat()
        header = self.add(
            "Invoice",
            "InvoiceHeaderId",
            {
                "InvoiceNumber": number,
                "InvoiceDate": utc_text(date),
                "InvoiceHeaderState": state,
                "InvoiceHeaderType": kind,
                "CompanyId": str(cid),
                "CustomerCompanyId": cust["CustomerCompanyId"],
                "InvoiceCustomerCompanyId": cust["CustomerCompanyId"],
                "CurrencyId": "1",
                "InvoiceText": text or None,
                "InvoiceReference": f"REF-{header_id}",
                "OriginalInvoiceHeaderId": original["InvoiceHeaderId"] if original else None,
                "OriginalInvoiceNumber": original["InvoiceNumber"] if original else None,
                "IsWrittenOff": written_off,
                "TotalAmountExclVat": str(total_excl),
                "TotalVatAmount": str(total_vat),
                "TotalAmountInclVat": str(total_excl + total_vat),
                "DueDate": utc_text(due),
                "PaymentTerm": 14,
                "PaymentConditionType": "Days",
                "CreatedOn": f"{date}T09:00:00Z",
            },
        )
        for line in line_recs:  # the 8-property InvoiceLine and its OverviewInvoiceLine, one id
            record = self.add(
                "InvoiceLine",
                "InvoiceLineId",
                {
                    "Date": line["Date"],
                    "Description": line["Description"],
                    "InvoiceGroup": None,
                    "Price": line["Price"],
                    "Remarks": None,
                    "Quantity": line["Quantity"],
                    "InvoiceMutationReasonId": None,
                },
            )
            line.update(InvoiceLineId=record["InvoiceLineId"])
            self.entities.setdefault("OverviewInvoiceLine", []).append(
                {"InvoiceLineId": record["InvoiceLineId"], **line}
            )
        self.pdf_lines[header_id] = (
            [
                f"{'CREDITNOTA' if kind == 'CreditNote' else 'FACTUUR'} {number or '(concept)'}",
                f"Datum: {date}   Vervaldatum: {due}",
                f"Klant: {cust['CustomerCode']} {cust['Name']}",
                "",
            ]
            + [
                f"{ln['Description']}: {ln['Quantity']} x {ln['Price']} = {ln['AmountExclVat']}"
                f" (btw {ln['VatPercentage']}%: {ln['VatAmount']})"
                for ln in line_recs
            ]
            + [
                "",
                f"Totaal excl. btw: EUR {total_excl}",
                f"Btw: EUR {total_vat}",
                f"Totaal incl. btw: EUR {total_excl + total_vat}",
            ]
        )
        return header

    def section(self, pdfs: dict[str, object] | None = None, **extra) -> dict:
        return {
            "clients": [
                {
                    "client_id": universe.QICS_CLIENT_ID,
                    "client_secret": universe.QICS_CLIENT_SECRET,
                    "refresh_token": universe.QICS_INITIAL_REFRESH_TOKEN,
                    "redirect_uri": universe.QICS_REDIRECT_URI,
                }
            ],
            "access_token_ttl_seconds": 3600,
            "page_size": 100,
            **extra,
            "entities": self.entities,
            "invoice_pdfs": pdfs or {},
        }


def build_demo() -> tuple[dict, dict[str, bytes]]:
    """The demo "qics" section and its PDFs (file name -> bytes)."""
    b = Builder()
    noord, zuid = (b.company(adm) for adm in universe.ADMINISTRATIONS)
    names = {
        "10000": "Gemeente Groningen",
        "10001": "Waterschap Noorderzijlvest",
        "10002": "Bouwbedrijf De Vries",
        "10003": "Stichting Wonen Noord",
        str(universe.UNKNOWN_DEBTOR_NUMBER): "Onbekend in King B.V.",
    }
    for code, name in names.items():
        b.customer(noord, code, name)
    for code in ("10000", "10001", "10002"):
        b.customer(zuid, code, names[code], city="Eindhoven")
    first = b.invoice(
        noord, "10000", "2026-10-05", [("ADV", "8", None)], number="N2026001", text="Advies oktober"
    )
    b.invoice(
        noord,
        "10001",
        "2026-10-12",
        [("ADV", "10", None), ("PM", "4", None), ("BOEK", "1", None)],
        number="N2026002",
    )
    b.invoice(
        noord,
        "10000",
        "2026-10-20",
        [("ADV", "-2", None)],
        number="N2026003",
        kind="CreditNote",
        original=first,
        text="Creditering 2 uur",
    )
    b.invoice(
        noord,
        "10002",
        "2026-10-25",
        [("ADV", "3", None), ("ADV", "-3", None)],
        number="Afgeboekte factuur: 1234",
        written_off=True,
    )
    no_pdf = b.invoice(noord, "10003", "2026-11-02", [("REIS", "120", None)], number="N2026004")
    b.invoice(
        noord, str(universe.UNKNOWN_DEBTOR_NUMBER), "2026-11-05", [("ADV", "1", None)], number="N2026005"
    )
    b.invoice(noord, "10001", "2026-09-28", [("PM", "2", None)], number="N2025099", text="Voor go-live")
    b.invoice(noord, "10002", "2026-11-10", [("ADV", "5", None)], number=None, state="Approved")
    b.invoice(zuid, "10000", "2026-11-03", [("ADV", "6", None)], number="Z2026001")
    b.invoice(zuid, "10001", "2026-11-04", [("PM", "3", None), ("BOEK", "2", None)], number="Z2026002")
    b.invoice(zuid, "10002", "2026-11-06", [("REIS", "55", None), ("ADV", "1.5", None)], number="Z2026003")
    pdfs, refs = {}, {}
    for header in b.entities["Invoice"]:
        hid = int(header["InvoiceHeaderId"])
        if header["InvoiceHeaderId"] == no_pdf["InvoiceHeaderId"]:
            continue
        name = f"invoice_{hid:03d}.pdf"
        pdfs[name] = text_pdf(b.pdf_lines[hid], title=f"Invoice {header['InvoiceNumber'] or hid}")
        refs[str(hid)] = f"pdfs/{name}"
    return b.section(refs), pdfs


def generate_section(n: int, seed: int = 1, invoices: int = 0) -> dict:
    """Company 1 with VAT codes and items; with ``invoices``: that many processed invoices (and the
    customers 10000.. they are for; only invoiced customers exist). Deterministic per seed."""
    rng = random.Random(seed)
    b = Builder()
    cid = b.company(universe.ADMINISTRATIONS[0])
    pdfs: dict[str, object] = {}
    n = max(n, 1)
    for i in range(invoices):
        code = str(universe.FIRST_DEBTOR_NUMBER + (i % n))
        if (cid, code) not in b.customers:
            b.customer(cid, code, f"Klant {code}")
        day = f"2026-{rng.choice(['10', '11'])}-{rng.randint(1, 28):02d}"
        lines = [
            (rng.choice(["ADV", "PM", "REIS", "BOEK"]), str(rng.randint(1, 12)), None)
            for _ in range(rng.randint(1, 3))
        ]
        header = b.invoice(cid, code, day, lines, number=f"N{2026000 + i + 1}")
        hid = int(header["InvoiceHeaderId"])
        pdfs[str(hid)] = text_pdf(b.pdf_lines[hid], title=header["InvoiceNumber"])
    return b.section(pdfs)


def write_demo(folder: Path = FIXTURES) -> None:
    section, pdfs = build_demo()
    (folder / "pdfs").mkdir(parents=True, exist_ok=True)
    for name, content in pdfs.items():
        (folder / "pdfs" / name).write_bytes(content)
    demo_path = folder / "demo.json"
    demo = json.loads(demo_path.read_text(encoding="utf-8"))
    demo["qics"] = section
    demo_path.write_text(json.dumps(demo, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-demo"]:
        write_demo()
    else:
        print(__doc__)
