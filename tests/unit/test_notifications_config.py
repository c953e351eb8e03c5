"""The notifications block of include/administrations.yaml: a global default, overridden key by key
per administration, and one clear error for a broken block."""

from __future__ import annotations

from king_qics.config import Notifications, parse_administrations
from tests.unit.test_config import MINIMAL

DEFAULT = {"email_conn_id": "smtp_office", "email_to": ["finance@example.nl"], "stalled_minutes": 60}


def test_nothing_is_sent_without_a_channel():
    result = parse_administrations({"administrations": [MINIMAL]})
    notifications = result.administrations[0].notifications
    assert notifications == Notifications() and not notifications.has_channel
    assert notifications.task_failed and notifications.credentials  # what is sent once a channel is set


def test_the_global_default_applies_and_an_entry_overrides_it_key_by_key():
    other = {**MINIMAL, "id": "west", "king_conn_id": "king_west", "qics_company_id": 4}
    own = {**other, "notifications": {"stalled_minutes": 30, "daily_digest": "08:00"}}
    result = parse_administrations({"notifications": DEFAULT, "administrations": [MINIMAL, own]})
    assert result.errors == []
    oost, west = result.administrations
    assert oost.notifications.email_conn_id == "smtp_office" and oost.notifications.stalled_minutes == 60
    assert west.notifications.email_to == ["finance@example.nl"]  # from the default
    assert west.notifications.stalled_minutes == 30 and west.notifications.daily_digest == "08:00"


def test_a_broken_default_is_one_error_naming_the_field():
    result = parse_administrations(
        {"notifications": {**DEFAULT, "stalled_minuts": 5}, "administrations": [MINIMAL]}
    )
    assert [str(error) for error in result.errors] == [
        "config file: notifications.stalled_minuts: unknown key (typo?)"
    ]
    assert result.administrations[0].notifications == Notifications()  # the entry still loads


def test_a_broken_entry_block_names_the_administration():
    entry = {**MINIMAL, "notifications": {"daily_digest": "8 uur"}}
    (error,) = parse_administrations({"administrations": [entry]}).errors
    assert error.administration == "oost" and error.fields == ("notifications.daily_digest",)
    entry = {**MINIMAL, "notifications": {"email_conn_id": "smtp_office"}}
    (error,) = parse_administrations({"administrations": [entry]}).errors
    assert "email_conn_id and email_to go together" in error.message
