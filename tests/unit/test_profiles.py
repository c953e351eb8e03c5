"""The wire profiles as data (hooks.king.profile, hooks.qics.profile) and the $filter they render
(hooks.qics.odata): parsing the connection's extras, refusing what cannot be right. No I/O."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from king_qics.hooks.king import KingProfile
from king_qics.hooks.qics import ODataFilter, QicsProfile, odata_filter

NS = "QicsUnity.Api.Areas.V3.Models"


def test_king_profile_from_extras():
    profile = KingProfile.from_extras({"soap_version": "1.2", "orderby_separator": ",", "timeout": "5"})
    assert (profile.soap_version, profile.orderby_separator) == ("1.2", ",")
    assert KingProfile.from_extras({}) == KingProfile() and KingProfile().booking_marker_field == "OPM"
    assert KingProfile(period_dates_table="").period_dates_table == ""  # calendar arithmetic
    for bad in (
        {"soap_version": "1.3"},
        {"orderby_separator": "|"},
        {"pdf_mechanism": "zip"},
        {"booking_marker_field": "opm; DROP"},
        {"outcome_grace_seconds": -1},
    ):
        with pytest.raises(ValidationError):
            KingProfile.from_extras(bad)


def test_qics_profile_from_extras():
    profile = QicsProfile.from_extras(
        {"enum_literal_style": "bare", "server_page_size": "50", "unrelated": "x"}
    )
    assert profile.enum_literal_style == "bare" and profile.server_page_size == 50
    assert QicsProfile.from_extras({}) == QicsProfile()
    assert QicsProfile().line_fields()["AmountExclVat"] == "AmountExclVat"
    assert QicsProfile(api_key_header="").api_key_header is None
    assert QicsProfile().pdf_path(7) == "/api/V3/odata/Invoice(7)/Pdf"
    for bad in (
        {"enum_literal_style": "typed"},
        {"invoice_pdf_path": "https://elsewhere/{key}"},
        {"invoice_pdf_path": "/api/V3/odata/Invoice/Pdf"},
        {"line_amount_field": "Amount Excl"},
        {"oauth_client_auth": "header"},
        {"credit_note_type": "Credit Note"},
    ):
        with pytest.raises(ValidationError):
            QicsProfile.from_extras(bad)


def test_filters_render_enums_and_dates_per_profile():
    conditions = {"CompanyId": "1", "InvoiceHeaderState": "Processed"}
    filter_ = odata_filter(conditions) & ODataFilter.compare("InvoiceDate", "ge", dt.date(2026, 9, 30))
    assert filter_.render() == (
        f"CompanyId eq 1 and InvoiceHeaderState eq {NS}.InvoiceHeaderState'Processed'"
        " and InvoiceDate ge 2026-09-30T00:00:00Z"
    )
    alt = QicsProfile(enum_literal_style="bare", date_literal_style="date")
    assert (
        filter_.render(alt)
        == "CompanyId eq 1 and InvoiceHeaderState eq 'Processed' and InvoiceDate ge 2026-09-30"
    )
    other_ns = QicsProfile(enum_namespace="Qics.V3")
    assert (
        odata_filter({"Origin": "Manual"}).render(other_ns) == "Origin eq Qics.V3.InvoiceLineOrigin'Manual'"
    )
    assert ODataFilter.any_of("InvoiceId", [1, 2]).render() == "InvoiceId eq 1 or InvoiceId eq 2"
    assert str(odata_filter({"CustomerCode": "O'Brien"})) == "CustomerCode eq 'O''Brien'"
    with pytest.raises(ValueError, match="property name"):
        odata_filter({"Code eq 1 or Code": 2})
