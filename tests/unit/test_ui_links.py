"""The page's retry / accept links (king_qics.ui.links): which DAG, which params, for which rows."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from king_qics.ui.links import ACCEPT, RETRY, actions


def target(href: str) -> tuple[str, str, dict]:
    parts = urlsplit(href)
    query = parse_qs(parts.query)
    return parts.path, query["dag"][0], json.loads(query["conf"][0])


def test_a_failing_record_is_retried_in_its_entitys_dag_and_accepted_in_the_maintenance_dag():
    links = dict(actions("/king-qics", "failing", {"entity": "customers", "king_key": "10006"}, "noord"))
    assert target(links[RETRY]) == (
        "/king-qics/administrations/noord/trigger",
        "master_data",
        {"keys": {"customers": ["10006"]}},
    )
    assert target(links[ACCEPT])[1:] == (
        "maintenance",
        {"administration": "noord", "accept_records": {"customers": ["10006"]}, "note": ""},
    )
    employee = dict(actions("", "failing", {"entity": "employees", "king_key": "SDEVRIES"}, "zuid"))
    assert target(employee[RETRY])[1:] == ("projects_employees", {"keys": {"employees": ["SDEVRIES"]}})


def test_a_failing_invoice_is_retried_and_may_be_accepted_only_while_nothing_was_sent():
    waiting = {"invoice_number": " N2026005 ", "state": "selected"}
    links = dict(actions("", "invoices_failed", waiting, "noord"))
    assert target(links[RETRY])[1:] == ("invoice_export", {"invoices": ["N2026005"]})
    assert target(links[ACCEPT])[1:] == (
        "maintenance",
        {"administration": "noord", "accept_invoices": ["N2026005"], "note": ""},
    )
    booked = {"invoice_number": "N2026001", "state": "booked"}  # its PDF failed: it is booked in King
    assert [text for text, _ in actions("", "invoices_failed", booked, "noord")] == [RETRY]


def test_other_lists_have_no_actions():
    assert actions("", "pending", {"entity": "customers", "king_key": "10005"}, "noord") == []
    assert actions("", "invoices_exported", {"invoice_number": "N2026001"}, "noord") == []
