"""Qics writes of one master-data run several at once (qics_write_concurrency), over real HTTP
against the sandboxes with latency: a Qics that limits the requests in flight (429 with
Retry-After) has the concurrency lowered and loses nothing; answers lost after the commit create
no duplicate; records Qics rejects fail one by one; every success is stored."""

from __future__ import annotations

from collections import Counter

import pytest

from king_qics.hooks.king import KingFinanceHook
from king_qics.hooks.qics import QicsMilestonesHook
from king_qics.hooks.qics.oauth import clear_process_cache
from king_qics.state import StateStore, SyncedRecords
from king_qics.sync.master_data import MasterDataSync
from sandbox import universe
from sandbox.king.generate import generate_section
from tests.integration.invoice_env import NOORD, use_sandbox_connections

DEBTORS = 80
LOOKUPS = ("vat_codes", "payment_conditions", "cost_centers")
POST_CUSTOMER = "POST CustomerCompany"


@pytest.fixture
def generated(sandboxes, monkeypatch, tmp_path):
    """King with DEBTORS generated debtors, Qics with only noord's company, 20 ms latency per call,
    a fresh state store; the latency is switched off again afterwards (the sandboxes are shared)."""
    adm = universe.ADMINISTRATIONS[0]
    company = {"CompanyId": "1", "Name": adm["name"], "Code": adm["qics_company_code"], "CurrencyId": "1"}
    sandboxes.admin("king", "POST", "load", json=generate_section(DEBTORS, seed=7))
    sandboxes.admin("qics", "POST", "load", json={"entities": {"Company": [company]}})
    use_sandbox_connections(sandboxes, monkeypatch)
    clear_process_cache()
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    store.create_schema()
    for api in ("king", "qics"):
        sandboxes.admin(api, "PUT", "latency", json={"seconds": 0.02})
    try:
        yield sandboxes, store
    finally:
        for api in ("king", "qics"):
            sandboxes.admin(api, "PUT", "latency", json={"seconds": 0})


def sync(store, entity: str, concurrency: int, **options):
    """One entity's run with ``concurrency`` Qics requests in flight at most; (report, Qics hook)."""
    king = KingFinanceHook(NOORD.king_conn_id)
    qics = QicsMilestonesHook(NOORD.qics_conn_id, token_store=store.tokens, max_in_flight=concurrency)
    try:
        return MasterDataSync(NOORD, king, qics, store).run(entity, **options), qics
    finally:
        king.close()
        qics.close()


def customers_in_qics(sandbox) -> Counter:
    records = sandbox.state("qics")["entities"].get("CustomerCompany", [])
    return Counter(str(r["CustomerCode"]) for r in records if str(r.get("CompanyId")) == "1")


def king_debtors() -> set[str]:
    tables = generate_section(DEBTORS, seed=7)["administrations"][0]["tables"]
    return {str(row["NR"]) for row in tables["DEB"]}


def assert_stored_as_in_qics(sandbox, store, keys: set[str]) -> None:
    """Every key in ``keys`` is stored as synced, with the Qics id Qics gave it."""
    records = sandbox.state("qics")["entities"]["CustomerCompany"]
    qics_ids = {str(r["CustomerCode"]): int(r["CustomerCompanyId"]) for r in records}
    stored = SyncedRecords(store, NOORD.id, "customers").qics_ids()
    assert {key: stored.get(key) for key in keys} == {key: qics_ids[key] for key in keys}


def test_a_rate_limit_lowers_the_requests_in_flight_and_nothing_is_lost_or_doubled(generated):
    sandbox, store = generated
    for entity in LOOKUPS:
        sync(store, entity, 1)
    sandbox.faults(
        "qics", {"kind": "rate_limit", "max_in_flight": 3, "retry_after": 0.05, "operations": [POST_CUSTOMER]}
    )

    report, qics = sync(store, "customers", 8)

    fired = sandbox.admin("qics", "GET", "faults")
    refused = fired["rules"][0]["fired"]  # this rule's refusals (fired["fired"] counts the session's)
    assert refused > 0  # Qics did say "too many"
    assert qics.in_flight.stats.throttled == refused
    assert qics.in_flight.stats.lowest <= 3  # the limit was found: lowered to what Qics accepts
    assert fired["peak_in_flight"] <= 3
    # lowered, so Qics refused far fewer than it accepted (8 in flight against a limit of 3 would
    # have most requests refused, and records lost after their retries)
    assert refused < DEBTORS / 2
    assert (report.new, report.failed, report.failures) == (DEBTORS, 0, {})
    in_qics = customers_in_qics(sandbox)
    assert set(in_qics) == king_debtors() and set(in_qics.values()) == {1}
    assert_stored_as_in_qics(sandbox, store, king_debtors())


def test_without_a_limit_the_writes_really_overlap(generated):
    sandbox, store = generated
    for entity in LOOKUPS:
        sync(store, entity, 1)
    report, qics = sync(store, "customers", 6)
    assert report.new == DEBTORS
    assert 2 <= sandbox.admin("qics", "GET", "faults")["peak_in_flight"] <= 6
    assert qics.in_flight.stats.throttled == 0


def test_answers_lost_after_the_commit_create_no_duplicate_with_writes_in_flight(generated):
    sandbox, store = generated
    for entity in LOOKUPS:
        sync(store, entity, 1)
    sandbox.faults(
        "qics", {"kind": "drop_after_commit", "probability": 0.25, "operations": [POST_CUSTOMER]}, seed=3
    )

    report, _ = sync(store, "customers", 8)

    assert sandbox.admin("qics", "GET", "faults")["rules"][0]["fired"] > 5
    assert (report.new, report.failed) == (DEBTORS, 0)
    in_qics = customers_in_qics(sandbox)
    assert set(in_qics) == king_debtors() and set(in_qics.values()) == {1}
    assert_stored_as_in_qics(sandbox, store, king_debtors())


def test_records_qics_rejects_fail_one_by_one_and_the_others_are_stored(generated):
    sandbox, store = generated
    for entity in LOOKUPS:
        sync(store, entity, 1)
    refusal = '{"error": {"code": "", "message": "CustomerName invalid"}}'
    sandbox.faults(
        "qics",
        {
            "kind": "raw_response",
            "probability": 0.2,
            "operations": [POST_CUSTOMER],
            "status": 400,
            "body": refusal,
            "content_type": "application/json",
        },
        seed=5,
    )

    report, _ = sync(store, "customers", 8)

    refused = sandbox.admin("qics", "GET", "faults")["rules"][0]["fired"]
    in_qics = customers_in_qics(sandbox)
    failed = king_debtors() - set(in_qics)
    assert refused > 3 and len(failed) == refused == report.failed
    assert set(report.failures) == failed
    assert all("CustomerName invalid" in reason for reason in report.failures.values())
    assert report.new == DEBTORS - refused
    assert SyncedRecords(store, NOORD.id, "customers").failing().keys() == failed
    assert_stored_as_in_qics(sandbox, store, set(in_qics))

    sandbox.admin("qics", "DELETE", "faults")
    again, _ = sync(store, "customers", 8, retry_rejected=True)  # a cleared task sends them again
    assert (again.new, again.failed) == (refused, 0)
    in_qics = customers_in_qics(sandbox)
    assert set(in_qics) == king_debtors() and set(in_qics.values()) == {1}
    assert SyncedRecords(store, NOORD.id, "customers").failing() == {}
