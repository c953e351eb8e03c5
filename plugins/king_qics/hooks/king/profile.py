"""The King Cloudswitch wire profile: every choice about the real service that is still a guess, in
one typed place, overridable per connection through its extras (same names).

Defaults are the best public evidence (shared/research/api_evidence_2026-12.md and the research
notes quoted in the README's "King wire profile" table); each setting says where it comes from. The
preflight (``python -m king_qics.preflight``) checks each against the real service.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

KING_FIELD = r"^[A-Z][A-Z0-9_]*$"


class KingProfile(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    # SOAP 1.1 (text/xml + SOAPAction): what the client that ran live against
    # api.kingfinance.nl sends (BokitoAiV2, poc-imuis); 1.2 is documented and used by go-imuis.
    soap_version: Literal["1.1", "1.2"] = "1.1"
    # How several ORDERBY fields are joined: ";" as the working clients do (sync-imuis, go-imuis).
    orderby_separator: Literal[";", ",", "\t"] = ";"
    # How a dataset parameter (Selectie, Journaalpost, ...) travels: as a CDATA string, as every
    # working client sends it ("ws1_xml expects Selectie as a string", BokitoAiV2); or escaped text.
    dataset_encoding: Literal["cdata", "escaped"] = "cdata"
    # How the invoice PDF (DIGDOS.FILE) is sent. Valid base64 in an untyped ws1_xml dataset was
    # refused with CS312 (poc-imuis): "inline_schema" declares FILE as xs:base64Binary in an inline
    # XSD, as a .NET DataSet writes it (an inference: no client shows it); "untyped": plain text.
    pdf_mechanism: Literal["inline_schema", "untyped"] = "inline_schema"
    # Where the fiscal periods' dates come from (GetAdmInfo; DOC-ADM names PERIODEDATUMS, "Datumrange
    # zoals deze horen bij de periode indeling", but no source shows its fields: assumed). Empty
    # table: calendar arithmetic from BASFIN.AANTPER (periods of equal months; 13 periods refused).
    period_dates_table: str = Field("PERIODEDATUMS", pattern=r"^([A-Z][A-Z0-9_]*)?$")
    period_dates_year_field: str = Field("JR", pattern=KING_FIELD)
    period_dates_period_field: str = Field("PN", pattern=KING_FIELD)
    period_dates_start_field: str = Field("DATVAN", pattern=KING_FIELD)
    period_dates_end_field: str = Field("DATTOT", pattern=KING_FIELD)
    # How long King may still be committing a booking whose request we gave up on (timeout, lost
    # answer) before a look-up that does not find it is trusted and the booking is sent again.
    # Assumption: no figure is documented; 5 minutes is far above any answer time seen.
    outcome_grace_seconds: float = Field(300.0, ge=0)
    # BOE field that carries our marker (Qics company and invoice id) on every booking we post, so
    # our bookings are recognised whatever King does to FACT. Evidence: BOE has no external
    # reference field; OPM ("Opmerking", CHAR 250) is the remark field (research notes, B.3).
    # Assumption: King stores it verbatim and can filter on it (the preflight's write probe checks).
    booking_marker_field: str = Field("OPM", pattern=KING_FIELD)

    @classmethod
    def from_extras(cls, extras: dict) -> KingProfile:
        return cls.model_validate({name: value for name, value in extras.items() if name in cls.model_fields})

    @property
    def period_dates_fields(self) -> list[str]:
        return [
            self.period_dates_year_field,
            self.period_dates_period_field,
            self.period_dates_start_field,
            self.period_dates_end_field,
        ]
