"""CreateJournaalpost, UpdateJournaalpost, DeleteJournaalpost of the King emulator, and the admin
API's staging of what a person does in King by hand (bookings, a journal that numbers FACT itself).
"""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal

from fastapi import Request
from lxml import etree

from sandbox.king import soap
from sandbox.king.records import MSG_BYTES, REFERENCES, Refused, parse_fields, row_element, row_text
from sandbox.king.schema import JOURNAL_INPUT_FIELDS, TABLES, ValueProblem, from_wire
from sandbox.king.store import Administration, Record, now


def commit_booking(adm: Administration, rows: list[dict], program: str, *, sales: bool) -> list[Record]:
    """Store the rows of one booking (one GRPROW, an RG each)."""
    changed = now()
    grprow = adm.next_grprow
    adm.next_grprow += 1
    created = []
    for row in rows:
        record = Record(row)
        record["RG"] = adm.next_rg
        adm.next_rg += 1
        record["GRPROW"] = grprow
        record["PRG"] = program
        if sales:
            record["DEB"] = row["REK"]
        record.mutdate = changed
        adm.tables["BOE"].append(record)
        created.append(record)
    return created


class JournalOperations:
    """Mixed into KingEmulator (``self.store``, ``self.lock``, ``self.wire``, ``self._adm``,
    ``self._dataset``)."""

    def _tables(self, dataset: etree._Element) -> list[etree._Element]:
        """The data rows of a Journaalpost; an inline schema is read (default profile) or, for an
        emulator in the alt profile that takes untyped files only, refused."""
        rows = []
        for child in dataset:
            if not isinstance(child.tag, str):
                continue
            if etree.QName(child).namespace == soap.XS and not self.wire.typed_files:
                raise Refused("Tabel schema is onbekend in een journaalpost")
            if etree.QName(child).namespace != soap.XS:
                rows.append(child)
        return rows

    def _digdos(self, rows: list[etree._Element], dataset: etree._Element) -> list[dict]:
        """The files of a journal entry. A FILE the dataset does not declare binary is a string the
        service cannot turn into bytes: CS312, even as valid base64 (poc-imuis, research notes N3)."""
        if rows and self.wire.typed_files:
            declared = soap.declared_types(dataset) or {}
            if declared.get(("DIGDOS", "FILE"), "").rpartition(":")[2] != "base64Binary":
                raise Refused(MSG_BYTES)
        docs = []
        for row in rows:
            values = row_text(row)
            if not values.get("FILENAME"):
                raise Refused("DIGDOS: FILENAME is verplicht")
            try:
                content = base64.b64decode(values.get("FILE", ""), validate=True)
            except (binascii.Error, ValueError):
                raise Refused(MSG_BYTES) from None
            if not content:
                raise Refused("DIGDOS: FILE is leeg")
            docs.append(
                {
                    "FILENAME": values["FILENAME"],
                    "FILEDESCRIPTION": values.get("FILEDESCRIPTION", ""),
                    "FILE": base64.b64encode(content).decode("ascii"),
                }
            )
        return docs

    def create_journaalpost(self, params: dict) -> dict:
        adm = self._adm(params)
        dataset = self._dataset(params, "Journaalpost")
        boe_rows, doc_rows = [], []
        for child in self._tables(dataset):
            tag = etree.QName(child).localname.upper()
            if tag == "BOE":
                boe_rows.append(child)
            elif tag == "DIGDOS":
                doc_rows.append(child)
            else:
                raise Refused(f"Tabel {tag} is onbekend in een journaalpost")
        if not boe_rows:
            raise Refused("Journaalpost bevat geen BOE-regel")
        rows = []
        for row in boe_rows:
            values = row_text(row)
            values.pop("BOE_WARNING", None)
            rows.append(parse_fields("BOE", values, allowed=JOURNAL_INPUT_FIELDS))
        docs = self._digdos(doc_rows, dataset)
        periods = int(adm.adm_info.get("BASFIN", {}).get("AANTPER", 12))
        first = rows[0]
        for number, row in enumerate(rows, start=1):
            for name in ("DAGB", "JR", "DAT", "TEGREK"):
                if row.get(name) in (None, ""):
                    raise Refused(f"Regel {number}: veld {name} is verplicht")
            if row.get("PN") is None:
                row["PN"] = row["DAT"].month if periods == 12 else None
                if row["PN"] is None:
                    raise Refused(f"Regel {number}: veld PN is verplicht")
            if not (0 <= row["PN"] <= periods or row["PN"] == 14):
                raise Refused(f"Regel {number}: periode {row['PN']} bestaat niet (1..{periods}, 14)")
            journals = adm.find("DAGBOEK", NR=row["DAGB"])
            if not journals or journals[0].get("BLOK"):
                raise Refused(f"Regel {number}: dagboek {row['DAGB']} bestaat niet of is geblokkeerd")
            journal = journals[0]
            if row.get("REK") is None:
                raise Refused(f"Regel {number}: veld REK is verplicht")
            if journal.get("SRT") == "V":
                if not adm.exists("DEB", row["REK"]):
                    raise Refused(f"Regel {number}: debiteur {row['REK']} bestaat niet")
            elif not adm.exists("GRB", row["REK"]):
                raise Refused(f"Regel {number}: grootboekrekening {row['REK']} bestaat niet")
            if not adm.exists("GRB", row["TEGREK"]):
                raise Refused(f"Regel {number}: grootboekrekening {row['TEGREK']} (TEGREK) bestaat niet")
            for field in ("BTW", "KPL", "KDR"):
                value = row.get(field)
                if value is None or (value == 0 and field != "BTW"):
                    continue
                if not adm.exists(REFERENCES["BOE"][field], value):
                    raise Refused(f"Regel {number}: {field} {value} bestaat niet")
            amount = row.get("BEDRBOEK") or Decimal(0)
            vat = row.get("BEDRBTW") or Decimal(0)
            if row.get("BTW") is not None:
                percentage = adm.find("BTW", NR=row["BTW"])[0].get("PERC") or Decimal(0)
                expected = abs(amount) * Decimal(percentage) / 100
                if abs(abs(vat) - expected) > Decimal("0.02"):
                    raise Refused(
                        f"Regel {number}: btw-bedrag {vat} past niet bij btw-code {row['BTW']} "
                        f"({percentage}% van {amount} = {expected.quantize(Decimal('0.01'))})"
                    )
            elif vat:
                raise Refused(f"Regel {number}: btw-bedrag zonder btw-code")
            for name in ("DAGB", "JR", "PN", "REK", "FACT", "DAT"):
                if row.get(name) != first.get(name):
                    raise Refused(f"Regel {number}: {name} wijkt af van regel 1; een uitsplitsing is onjuist")
        journal = adm.find("DAGBOEK", NR=first["DAGB"])[0]
        numbers_itself = journal.get("NR") in adm.fact_numbering
        if journal.get("SRT") == "V" and (numbers_itself or not first.get("FACT")):
            last = str(journal.get("FACT") or "0")
            if last.isdigit():
                number = str(int(last) + 1).zfill(len(last))
                journal["FACT"] = number
                journal.mutdate = now()
                for row in rows:
                    row["FACT"] = number
        created = commit_booking(adm, rows, "CSW", sales=journal.get("SRT") == "V")
        self._attach(adm, created[0], docs)
        echo = etree.Element("NewDataSet")
        fields = list(TABLES["BOE"]["fields"])
        for record in created:
            echo.append(row_element("BOE", "BOE", record, fields))
        keys = [f"{r['DAGB']};{r['JR']};{r['PN']};{r['RG']}" for r in created]
        shape = adm.answer_shape
        if shape.get("primary_key") == "opaque":
            keys = [f"K{r['JR']}{r['RG']:08d}" for r in created]
        elif shape.get("primary_key") == "none":
            keys = []
        return {
            "Journaalpost": soap.dataset_text(echo) if shape.get("echo", True) else None,
            "Primarykey": keys,
        }

    @staticmethod
    def _attach(adm: Administration, first: dict, docs: list[dict]) -> None:
        for doc in docs:
            adm.documents.append(
                {name: first.get(name) for name in ("DAGB", "JR", "PN", "RG", "GRPROW")} | doc
            )

    def _booking(self, adm: Administration, params: dict) -> list:
        key = str(params.get("Primarykey") or "").strip()
        parts = key.replace(",", ";").replace("/", ";").replace("|", ";").split(";")
        try:
            dagb, jr, pn, rg = (int(part) for part in parts)
        except ValueError:
            raise Refused(f"Primarykey '{key}' is ongeldig (verwacht DAGB;JR;PN;RG)") from None
        found = adm.find("BOE", DAGB=dagb, JR=jr, PN=pn, RG=rg)
        if not found:
            raise Refused(f"Journaalpost {key} niet gevonden")
        return [r for r in adm.tables["BOE"] if r.get("GRPROW") == found[0].get("GRPROW")]

    def update_journaalpost(self, params: dict) -> dict:
        adm = self._adm(params)
        rows = self._booking(adm, params)
        dataset = self._dataset(params, "Journaalpost")
        children = self._tables(dataset)
        if any(etree.QName(c).localname.upper() != "DIGDOS" for c in children) or not children:
            raise Refused(
                "UpdateJournaalpost: de sandbox ondersteunt alleen het toevoegen van DIGDOS-bestanden"
            )
        self._attach(adm, rows[0], self._digdos(children, dataset))
        for record in rows:
            record.mutdate = now()
        echo = etree.Element("NewDataSet")
        for record in rows:
            echo.append(row_element("BOE", "BOE", record, list(TABLES["BOE"]["fields"])))
        return {"Journaalpost": soap.dataset_text(echo)}

    def delete_journaalpost(self, params: dict) -> dict:
        adm = self._adm(params)
        rows = self._booking(adm, params)
        group = rows[0].get("GRPROW")
        adm.tables["BOE"] = [r for r in adm.tables["BOE"] if r.get("GRPROW") != group]
        adm.documents = [d for d in adm.documents if d.get("GRPROW") != group]
        return {}

    # -- admin API: what a person does in King ---------------------------------------------------

    async def admin_hand_booking(self, request: Request) -> dict:
        """``POST /_sandbox/bookings`` {"environment_code", "rows": [BOE fields], "program"?}: a
        booking made in King by hand (or by another program): no checks beyond the field types."""
        body = await request.json()
        with self.lock:
            adm = self.store.administrations[str(body["environment_code"])]
            rows = []
            for values in body["rows"]:
                try:
                    rows.append(
                        {
                            name.upper(): from_wire("BOE", name.upper(), value)
                            for name, value in values.items()
                        }
                    )
                except (KeyError, ValueProblem) as exc:
                    raise ValueError(f"hand booking: {exc}") from None
            journal = adm.find("DAGBOEK", NR=rows[0].get("DAGB"))
            sales = bool(journal) and journal[0].get("SRT") == "V"
            created = commit_booking(adm, rows, str(body.get("program") or "HAND"), sales=sales)
            self._query_cache.clear()
        first = created[0]
        return {
            "key": f"{first['DAGB']};{first['JR']};{first['PN']};{first['RG']}",
            "grprow": first["GRPROW"],
        }

    async def admin_journal_numbering(self, request: Request) -> dict:
        """``POST /_sandbox/journal_numbering`` {"environment_code", "journal", "numbers_fact"}: the
        journal gives every booking its own next FACT, whatever FACT was sent."""
        body = await request.json()
        with self.lock:
            adm = self.store.administrations[str(body["environment_code"])]
            journal = int(body["journal"])
            if body.get("numbers_fact", True):
                adm.fact_numbering.add(journal)
            else:
                adm.fact_numbering.discard(journal)
            return {"journals_numbering_fact": sorted(adm.fact_numbering)}

    async def admin_answer_shape(self, request: Request) -> dict:
        """``POST /_sandbox/answer_shape {"environment_code", "primary_key": "dagb_jr_pn_rg" | "opaque" |
        "none", "echo": bool}``: how CreateJournaalpost answers (its Primarykey format is unknown)."""
        body = await request.json()
        with self.lock:
            adm = self.store.administrations[str(body.pop("environment_code"))]
            adm.answer_shape = {**adm.answer_shape, **body}
            return dict(adm.answer_shape)
