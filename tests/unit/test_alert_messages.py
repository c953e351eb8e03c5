"""Alert messages as composed: a failure told again only when it changed, the limit with "and N
more", the advice per reason, escaping in the HTML, and the webhook payloads."""

from __future__ import annotations

from datetime import UTC, datetime

from king_qics.alerts import advice
from king_qics.alerts.channels import WebhookNotifier
from king_qics.alerts.compose import Message, item_lines
from king_qics.alerts.items import Item
from king_qics.alerts.task_events import fingerprint

LOOKUP = (
    "PaymentConditionId: King BETCOND 9 does not exist in King (no BETCOND record 9 when "
    "payment_conditions were last read, {when} Amsterdam): correct the code in King"
)


def test_a_failure_with_the_same_records_and_reasons_is_the_same_whatever_the_time_it_quotes():
    first = [Item("customers 10006", LOOKUP.format(when="2026-12-02 05:33"))]
    later = [Item("customers 10006", LOOKUP.format(when="2026-12-02 05:48"))]
    assert fingerprint("s", first) == fingerprint("s", later)
    assert fingerprint("s", first) != fingerprint("s", [*first, Item("customers 10008", "Name: too long")])
    assert fingerprint("s", first) != fingerprint("s", [Item("customers 10006", "Name: too long")])


def test_items_up_to_the_limit_then_and_n_more():
    since = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    items = [Item(f"invoice N{n}", "debtor 19999 does not exist in King", since, n) for n in range(1, 5)]
    lines = item_lines(items, 2)
    assert lines == [
        "invoice N1: debtor 19999 does not exist in King (since 2026-12-02 07:00, 1 attempt)",
        "invoice N2: debtor 19999 does not exist in King (since 2026-12-02 07:00, 2 attempts)",
        "and 2 more (the King <-> Qics page lists them all)",
    ]


def test_advice_per_reason():
    assert advice.for_reason(LOOKUP.format(when="x")) is advice.LOOKUP
    assert advice.for_reason("King BTW 7 is not synced to Qics yet: ...") is advice.LOOKUP
    assert advice.for_reason("period 2026/9 is closed in King; book it by hand") is advice.CLOSED_PERIOD
    reason = "King has FACT N2026002 (booking 70;2026;10;5) booked for Qics invoice 3 of company 1"
    assert advice.for_reason(reason) is advice.NUMBER_USED
    assert (
        advice.for_reason("King refused the booking: Regel 1: dagboek 71 bestaat niet") is advice.KING_REFUSED
    )
    assert advice.for_reason("something new") is advice.GENERIC_RECORD


def test_html_escapes_what_the_data_says():
    message = Message("task_failed", "noord", "noord: <b>x</b>").add("Items", "customers 1: Name '<script>'")
    html = message.html()
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert message.text().startswith("[king-qics] noord: <b>x</b>\n")


def test_webhook_payloads():
    slack = WebhookNotifier("hook", "slack", "subject", "text").payload()
    assert slack == {"text": "text"}
    teams = WebhookNotifier("hook", "teams", "subject", "text").payload()
    card = teams["attachments"][0]["content"]
    assert teams["type"] == "message" and card["type"] == "AdaptiveCard"
    assert [block["text"] for block in card["body"]] == ["subject", "text"]


def test_the_king_step_follows_what_king_refused():
    partner = advice.king_refused(
        "king_noord", "King refused the login: Inloggen mislukt: ongeldige partnerkey."
    )
    assert partner.startswith(
        "King refused the partner key: check that the partner key of connection king_noord"
    )
    environment = advice.king_refused("king_noord", "Inloggen mislukt: ongeldige omgevingscode.")
    assert environment.startswith("King refused the environment code: check that the environment code")
    both = advice.king_refused("king_noord", "geen toegang")
    assert "partner key or the environment code" in both and "environment_code" in both
