"""The wire profile the King emulator speaks: "default" is what the public evidence says the real
service does; "alt" differs in every setting of the client's King profile that the
emulator can check, so that a test can prove those settings work (and that the wrong ones fail).

Chosen with ``python -m sandbox serve --king-profile alt``, the fixture's ``"profile"``
key of the King section, or ``POST /_sandbox/profile {"name": "alt"}``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KingWire:
    name: str
    orderby_separator: str  # the only separator of several ORDERBY fields it understands
    typed_files: bool  # a DIGDOS FILE must be declared xs:base64Binary (else CS312), vs untyped only
    period_dates_table: str  # the GetAdmInfo table of the fiscal periods' dates
    period_dates_fields: tuple[str, str, str, str]  # year, period, start, end


PROFILES = {
    "default": KingWire("default", ";", True, "PERIODEDATUMS", ("JR", "PN", "DATVAN", "DATTOT")),
    "alt": KingWire("alt", ",", False, "PERIODEN", ("JAAR", "PERIODE", "BEGINDATUM", "EINDDATUM")),
}
# The hook's King connection extras that match each emulator profile (tests, README), as for Qics.
MATCHING_EXTRAS = {
    "default": {},
    "alt": {
        "soap_version": "1.2",
        "orderby_separator": ",",
        "pdf_mechanism": "untyped",
        "dataset_encoding": "escaped",
        "period_dates_table": "PERIODEN",
        "period_dates_year_field": "JAAR",
        "period_dates_period_field": "PERIODE",
        "period_dates_start_field": "BEGINDATUM",
        "period_dates_end_field": "EINDDATUM",
    },
}
