"""Deterministic King data: the demo fixture's administrations and ``--generate N`` volumes.

``python -m sandbox.king.generate --demo`` prints the demo's King section (it made the first version
of the "king" section of sandbox/fixtures/demo.json; the JSON file is now the source of truth).
"""

from __future__ import annotations

import json
import random
import sys

from sandbox import universe as U

OLD = "2026-06-01T09:00:00+02:00"
RECENT = "2026-11-20T10:00:00+01:00"

COMPANY_WORDS = [
    "Bouwbedrijf", "Installatietechniek", "Architecten", "Adviesgroep", "Transport", "Zorggroep",
    "Woningcorporatie", "Gemeente", "Ingenieursbureau", "Vastgoed", "Metaalbewerking", "Energie",
]  # fmt: skip
NAMES = [
    "De Vries", "Jansen", "Van den Berg", "Bakker", "Visser", "Smit", "Meijer", "De Boer", "Mulder",
    "De Groot", "Bos", "Vos", "Peters", "Hendriks", "Van Leeuwen", "Dekker", "Brouwer", "De Wit",
]  # fmt: skip
STREETS = [
    "Stationsstraat", "Kerkstraat", "Dorpsstraat", "Molenweg", "Industrieweg", "Havenkade",
    "Marktplein", "Schoolstraat", "Julianalaan", "Nieuwe Gracht", "Oranjelaan", "Parallelweg",
]  # fmt: skip
CITIES = [  # (postcode digits, city)
    ("1012", "Amsterdam"), ("3011", "Rotterdam"), ("2511", "Den Haag"), ("3511", "Utrecht"),
    ("9711", "Groningen"), ("5611", "Eindhoven"), ("6811", "Arnhem"), ("8011", "Zwolle"),
    ("7511", "Enschede"), ("4811", "Breda"), ("6211", "Maastricht"), ("1811", "Alkmaar"),
]  # fmt: skip
LEGAL = ["B.V.", "B.V.", "N.V.", "V.O.F.", ""]


def _lookups(adm: dict) -> dict[str, list[dict]]:
    grb = [
        {"NR": 1300, "ZKSL": "DEBITEUREN", "OMSCHR": "Debiteuren", "DC": "D", "BLOK": "N"},
        *(
            {"NR": nr, "ZKSL": f"BTW{nr}", "OMSCHR": name, "DC": "C", "BLOK": "N"}
            for nr, name in (
                (1500, "Te betalen btw hoog"),
                (1501, "Te betalen btw laag"),
                (1502, "Btw verlegd"),
            )
        ),
        *(
            {"NR": nr, "ZKSL": f"OMZET{nr}", "OMSCHR": name, "DC": "C", "BLOK": "N", "KPLVERPL": "N"}
            for nr, name in U.REVENUE_ACCOUNTS
        ),
    ]
    return {
        "BTW": [
            {
                "NR": nr,
                "ZKSL": f"BTW{nr}",
                "OMSCHR": name,
                "PERC": perc,
                "BTWPL": kind,
                "GRB": account,
                "BLOK": "N",
                "BLOKDEB": "N",
                "BLOKCRE": "N",
            }
            for nr, name, perc, kind, account in U.VAT_CODES
        ],
        "BETCOND": [
            {"NR": nr, "ZKSL": name, "OMSCHR": name, "VERVDGN": days, "BLOK": "N", "INCASSO": "N"}
            for nr, name, days in U.PAYMENT_CONDITIONS
        ],
        "KPL": [
            {"NR": nr, "ZKSL": name.upper()[:20], "OMSCHR": name, "BLOK": "N"} for nr, name in U.COST_CENTERS
        ],
        "GRB": grb,
        "ARTGRP": [
            {"NR": nr, "ZKSL": name.upper()[:20], "OMSCHR": name, "GRBOMZ": account, "BLOK": "N"}
            for nr, name, account in U.ITEM_GROUPS
        ],
        "ART": [
            {
                "NR": nr,
                "ZKSL": nr,
                "OMSCHR": name,
                "ARTGRP": group,
                "BTW": next(kind for code, _n, _p, kind, _g in U.VAT_CODES if code == vat),
                "EENHVERK": unit,
                "VERKPR": {"ADV": "125.00", "PM": "110.00", "REIS": "0.23", "BOEK": "49.95"}.get(nr, "10.00"),
                "BLOK": "N",
                "BLOKVRK": "N",
                "KPL": 100 if group == 1 else 200 if group == 2 else 300,
            }
            for nr, name, group, vat, unit in U.ITEMS
        ],
        "MEDEWERKER": [
            {
                "ZKSL": zksl,
                "ROEPNM": first,
                "VOORLTRS": first[0] + ".",
                "TSNVGSL": infix,
                "ACHTERNM": last,
                "EMAIL": email,
                "BLOK": "N",
                "DATINDIENST": "2019-03-01",
            }
            for zksl, first, infix, last, email in U.EMPLOYEES
        ],
        "DAGBOEK": [
            {
                "NR": adm["sales_journal"],
                "ZKSL": "VERKOOP",
                "OMSCHR": "Verkoopboek",
                "SRT": "V",
                "FACT": "26000100",
                "BOEKSTUK": "26000100",
                "TEGREK": 8000,
                "BLOK": "N",
            },
            {"NR": 90, "ZKSL": "MEMORIAAL", "OMSCHR": "Memoriaal", "SRT": "M", "BLOK": "N"},
        ],
    }


def _adm_info(adm: dict) -> dict:
    return {
        "BASFIN": {
            "AANTPER": 12,
            "ONDERGRB": 1,
            "BOVENGRB": 9999,
            "ONDERDEB": 10000,
            "BOVENDEB": 199999,
            "ONDERCRE": 200000,
            "BOVENCRE": 299999,
            "VAL": "EUR",
        },
        "PERIODEINFO": {
            "JR": 2026,
            "PN": 11,
            "JRAFGESL": 2025,
            "PNAFGESL": 14,
            "JRAFGESLGEBR": 2026,
            "PNAFGESLGEBR": 9,
        },
        "BASALG": {"NAAM": adm["name"], "PLAATS": "Utrecht", "LAND": "NL", "ADMNR": adm["adm_number"]},
    }


def _debtor(rng: random.Random, nr: int) -> dict:
    name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(NAMES)}"
    legal = rng.choice(LEGAL)
    full = f"{name} {legal}".strip()
    street, number = rng.choice(STREETS), rng.randint(1, 250)
    digits, city = rng.choice(CITIES)
    letters = "".join(rng.choice("ABCEGHJKLMNPRSTVWXZ") for _ in range(2))
    kvk = f"{rng.randint(10000000, 99999999)}"
    domain = "".join(ch for ch in name.lower() if ch.isalnum())[:20]
    return {
        "NR": nr,
        "ZKSL": f"{name.upper().replace(' ', '')[:14]}{nr % 1000000:06d}"[:20],
        "NAAM": full[:50],
        "NAAM2": "T.a.v. de crediteurenadministratie" if rng.random() < 0.3 else "",
        "ADRES": f"{street} {number}",
        "STRAAT": street,
        "HNR": number,
        "HNRTV": rng.choice(["", "", "", "A", "bis"]),
        "POSTCD": f"{digits} {letters}",
        "PLAATS": city,
        "LAND": "NL",
        "EMAIL": f"facturen@{domain}.nl",
        "TEL": f"0{rng.randint(10, 99)}-{rng.randint(1000000, 9999999)}",
        "BTWNR": f"NL{rng.randint(100000000, 999999999)}B01",
        "BTWPL": "B",
        "KVKNR": kvk,
        "BETCOND": rng.choice(U.PAYMENT_CONDITIONS)[0],
        "SLUITREK": U.DEBTORS_CONTROL_ACCOUNT,
        "KPL": rng.choice(U.COST_CENTERS)[0],
        "BLOK": "N",
        "DECLTOEL": rng.choice(["J", "N"]),
        "MEDEWDEC": "",
        "VAL": "EUR",
    }


def generate_section(n: int, seed: int = 1) -> dict:
    """One administration (universe ADMINISTRATIONS[0]) with ``n`` debtors and consistent lookups."""
    rng = random.Random(seed)
    adm = U.ADMINISTRATIONS[0]
    tables = _lookups(adm)
    tables["DEB"] = [_debtor(rng, U.FIRST_DEBTOR_NUMBER + i) for i in range(n)]
    employees = [e[0] for e in U.EMPLOYEES]
    tables["KDR"] = [
        {
            "NR": 5000 + i,
            "ZKSL": f"PRJ{5000 + i}",
            "OMSCHR": f"Project {i + 1}",
            "DEB": U.FIRST_DEBTOR_NUMBER + rng.randrange(n),
            "MEDEWDEC": rng.choice(employees),
            "DATAANVANG": "2026-01-01",
            "BLOK": "N",
            "KPL": 200,
        }
        for i in range(min(max(n // 10, 1), 10000) if n else 0)
    ]
    return {
        "partner_keys": [U.KING_TEST_PARTNER_KEY],
        "session_idle_minutes": 30,
        "administrations": [
            {
                "environment_code": adm["environment_code"],
                "adm_number": adm["adm_number"],
                "name": adm["name"],
                "adm_info": _adm_info(adm),
                "tables": tables,
            }
        ],
    }


def demo_section() -> dict:
    """The demo data: both universe administrations, 12 debtors each with the special cases."""
    administrations = []
    for index, adm in enumerate(U.ADMINISTRATIONS):
        rng = random.Random(2026 + index)
        tables = _lookups(adm)
        debtors = [_debtor(rng, nr) for nr in U.DEMO_DEBTOR_NUMBERS]
        for row in debtors:
            row["_mutdate"] = OLD
        debtors[3].update(BLOK="J", _comment="blocked debtor (BLOK=J)")
        debtors[4].update(
            LAND="BE",
            POSTCD="2000",
            PLAATS="Antwerpen",
            BTWNR="BE0123456789",
            BTWPL="I",
            TEL="+32-3-1234567",
            KVKNR="",
            _comment="Belgian debtor, VAT liability I (intra-EU): reverse-charge VAT code 3 by config",
        )
        debtors[5].update(MEDEWDEC="SDEVRIES", _comment="MEDEWDEC set to an employee")
        debtors[6].update(BETCOND=9, _comment="BETCOND 9 does not exist in BETCOND (lookup must fail)")
        debtors[10]["_mutdate"] = RECENT
        debtors[11]["_mutdate"] = RECENT
        tables["DEB"] = debtors
        tables["KDR"] = [
            {
                "NR": 5001,
                "ZKSL": "PRJ-NIEUWBOUW",
                "OMSCHR": "Nieuwbouw kantoor",
                "DEB": 10000,
                "MEDEWDEC": "JJANSEN",
                "DATAANVANG": "2026-02-01",
                "BLOK": "N",
                "KPL": 200,
            },
            {
                "NR": 5002,
                "ZKSL": "PRJ-RENOVATIE",
                "OMSCHR": "Renovatie & verduurzaming",
                "DEB": 10001,
                "MEDEWDEC": "PBAKKER",
                "DATAANVANG": "2026-04-15",
                "DATGEREED": "2026-10-31",
                "BLOK": "N",
                "KPL": 200,
            },
            {
                "NR": 5003,
                "ZKSL": "PRJ-ADVIES",
                "OMSCHR": "Adviestraject <fase 2>",
                "DEB": 10002,
                "MEDEWDEC": "SDEVRIES",
                "DATAANVANG": "2026-09-01",
                "BLOK": "N",
                "KPL": 100,
            },
        ]
        for rows in tables.values():
            for row in rows:
                row.setdefault("_mutdate", OLD)
        administrations.append(
            {
                "environment_code": adm["environment_code"],
                "adm_number": adm["adm_number"],
                "name": adm["name"],
                "adm_info": _adm_info(adm),
                "tables": tables,
            }
        )
    return {
        "_comment": "King section of the demo fixture; format in docs/sandbox_king.md",
        "partner_keys": [U.KING_TEST_PARTNER_KEY],
        "session_idle_minutes": 30,
        "administrations": administrations,
    }


if __name__ == "__main__":
    if "--demo" in sys.argv:
        json.dump(demo_section(), sys.stdout, indent=1, ensure_ascii=False)
        sys.stdout.write("\n")
