"""Identifiers both emulators agree on, so generated and demo data line up across the two systems.

A Qics customer's ``CustomerCode`` is the King debtor number (DEB.NR), a Qics VAT code's ``Code``
is King's BTW.NR, an item's ``ItemCode`` is King's ART.NR, and so on: the same natural keys the
sync uses to match records.
"""

# King: the documented test partner key and environment code (administration 2000).
KING_TEST_PARTNER_KEY = "abcdefghijklmnopqrstuvwxyz"
KING_TEST_ENVIRONMENT_CODE = "00000"

# Qics: the OAuth application the sandbox knows.
QICS_CLIENT_ID = "king-qics-sync"
QICS_CLIENT_SECRET = "sandbox-client-secret"
QICS_INITIAL_REFRESH_TOKEN = "sandbox-refresh-token-0"
QICS_REDIRECT_URI = "http://localhost:8080/oauth/callback"

# The two demo administrations, and the one `--generate N` builds (the first).
ADMINISTRATIONS = [
    {
        "id": "noord",
        "name": "Adviesbureau Noord B.V.",
        "environment_code": "00000",
        "adm_number": 2000,
        "qics_company_id": 1,
        "qics_company_code": "NOORD",
        "sales_journal": 70,
    },
    {
        "id": "zuid",
        "name": "Ingenieursbureau Zuid B.V.",
        "environment_code": "31337",
        "adm_number": 2001,
        "qics_company_id": 2,
        "qics_company_code": "ZUID",
        "sales_journal": 70,
    },
]

# Generated data uses these codes in every administration.
VAT_CODES = [  # BTW.NR, OMSCHR, PERC, kind (BTWPL-like letter), GL account
    (0, "Geen btw", "0", "N", 1500),
    (1, "Btw hoog 21%", "21", "B", 1500),
    (2, "Btw laag 9%", "9", "L", 1501),
    (3, "Btw verlegd", "0", "V", 1502),
]
PAYMENT_CONDITIONS = [(1, "14 dagen netto", 14), (2, "30 dagen netto", 30), (3, "Direct", 0)]
COST_CENTERS = [(100, "Advies"), (200, "Projectmanagement"), (300, "Overhead")]
REVENUE_ACCOUNTS = [(8000, "Omzet advies"), (8010, "Omzet projectmanagement"), (8020, "Omzet overig")]
DEBTORS_CONTROL_ACCOUNT = 1300
FIRST_DEBTOR_NUMBER = 10000
ITEM_GROUPS = [(1, "Advies", 8000), (2, "Projectmanagement", 8010), (3, "Overig", 8020)]
ITEMS = [  # ART.NR, OMSCHR, ARTGRP, BTW.NR of its VAT (ART.BTW holds that code's BTWPL letter), EENHVERK
    ("ADV", "Adviesuur", 1, 1, "uur"),
    ("PM", "Projectmanagement uur", 2, 1, "uur"),
    ("REIS", "Reiskosten", 3, 1, "km"),
    ("BOEK", "Vakliteratuur", 3, 2, "stuk"),
]
EMPLOYEES = [  # MEDEWERKER.ZKSL, VOORLTRS/ROEPNM, TSNVGSL, ACHTERNM, EMAIL
    ("JJANSEN", "Jan", "", "Jansen", "j.jansen@example.nl"),
    ("PBAKKER", "Petra", "", "Bakker", "p.bakker@example.nl"),
    ("SDEVRIES", "Sanne", "de", "Vries", "s.devries@example.nl"),
]
# Demo debtors are DEB.NR 10000..10011 in each administration; the Qics demo data refers to
# customers by these codes. 19999 is a customer that exists in Qics but not in King.
DEMO_DEBTOR_NUMBERS = list(range(10000, 10012))
UNKNOWN_DEBTOR_NUMBER = 19999
