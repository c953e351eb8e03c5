"""The King Cloudswitch wire profile: every choice about the real service that is still a guess, in
one typed place, overridable per connection through its extras (same names).

Defaults are the best public evidence (shared/research/api_evidence_2026-12.md); each setting says
where it comes from. The README's "Going live" section and the preflight check them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class KingProfile(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    # How long King may still be committing a booking whose request we gave up on (timeout, lost
    # answer) before a look-up that does not find it is trusted and the booking is sent again.
    # Assumption: no figure is documented; 5 minutes is far above any answer time seen.
    outcome_grace_seconds: float = Field(300.0, ge=0)
    # BOE field that carries our marker (Qics company and invoice id) on every booking we post, so
    # our bookings are recognised whatever King does to FACT. Evidence: BOE has no external
    # reference field; OPM ("Opmerking", CHAR 250) is the remark field (research notes, B.3).
    # Assumption: King stores it verbatim and can filter on it (the preflight's write probe checks).
    booking_marker_field: str = Field("OPM", pattern=r"^[A-Z][A-Z0-9_]*$")

    @classmethod
    def from_extras(cls, extras: dict) -> KingProfile:
        return cls.model_validate({name: value for name, value in extras.items() if name in cls.model_fields})
