"""The master-data sync and the invoice export against the Qics emulator in its alternative wire
profile (bare enum literals, odata.nextLink, invoice lines in another set with other field names,
another PDF route and processed state, HTTP Basic client auth, an API key), with the matching
connection extras: the same result as in the default profile. With the default extras they fail as
production would. (Qics side only; the King profile has its own test.)"""

from __future__ import annotations

import json
import os
from decimal import Decimal

import pytest

from king_qics.errors import AuthenticationError, ProtocolError
from king_qics.hooks.king import KingFinanceHook
from king_qics.hooks.qics import QicsMilestonesHook
from king_qics.hooks.qics.oauth import clear_process_cache
from king_qics.state import StateStore
from king_qics.sync.invoices import InvoiceExport
from king_qics.sync.master_data import MasterDataSync
from sandbox.qics.profile import MATCHING_EXTRAS
from tests.demo_data import load_fixture
from tests.integration.invoice_env import BOOKABLE, NOORD, assert_booked_once, bookings

ENTITIES = ("vat_codes", "payment_conditions", "cost_centers", "items", "customers", "employees", "projects")
AUTH = ("oauth_client_auth", "api_key_header", "api_key")


def set_qics_extras(monkeypatch, **values) -> None:
    name = f"AIRFLOW_CONN_{NOORD.qics_conn_id.upper()}"
    conn = json.loads(os.environ[name])
    conn["extra"] = {**conn["extra"], **values}
    monkeypatch.setenv(name, json.dumps(conn))


def start(env, tmp_path, profile: str, name: str) -> StateStore:
    """Fresh demo data in the sandboxes, the Qics emulator in ``profile``, a fresh state store."""
    fixture = load_fixture()
    fixture["qics"]["page_size"] = 3  # several pages everywhere: the next-link name matters
    env.load(fixture)
    env.admin("qics", "POST", "profile", json={"name": profile})
    clear_process_cache()
    store = StateStore(f"sqlite:///{tmp_path}/{name}.db")
    store.create_schema()
    return store


def hooks(store):
    return KingFinanceHook(NOORD.king_conn_id), QicsMilestonesHook(
        NOORD.qics_conn_id, token_store=store.tokens
    )


def sync_master_data(store) -> dict:
    king, qics = hooks(store)
    try:
        sync = MasterDataSync(NOORD, king, qics, store)
        reports = {entity: sync.run(entity) for entity in ENTITIES}
        reports["customer_managers"] = sync.run("customers", pending_only=True)
    finally:
        king.close()
        qics.close()
    return {name: (r.new, r.changed, r.failed, sorted(r.failures)) for name, r in reports.items()}


def export_invoices(store):
    king, qics = hooks(store)
    try:
        return InvoiceExport(NOORD, king, qics, store).run()
    finally:
        king.close()
        qics.close()


def outcome(env) -> dict:
    """What the run left in both systems (Qics's stored records; King's bookings and files)."""
    qics = env.state("qics")["entities"]
    for state in qics["EntityState"]:
        state.pop("DataSourceDate")
    rows = sorted(
        (
            str(r["FACT"]),
            int(r["TEGREK"]),
            int(r["BTW"]),
            Decimal(str(r["BEDRBOEK"])),
            str(r["OPM"]),
            str(r["OMSCHR"]),  # "Creditnota ..." for the credit note (credit_note_type)
        )
        for rows in bookings(env).values()
        for r in rows
    )
    files = sorted(d["FILENAME"] for d in env.state("king")["administrations"][0].get("documents", []))
    return {"qics": qics, "king": rows, "files": files}


def test_alt_profile_with_matching_extras_syncs_as_the_default_does(env, tmp_path, monkeypatch):
    store = start(env, tmp_path, "default", "default")
    default_counts = sync_master_data(store)
    default_report = export_invoices(store)
    expected = outcome(env)
    assert default_counts["customers"][2:] == (1, ["10006"]) and default_report.booked == 3

    store = start(env, tmp_path, "alt", "alt")
    set_qics_extras(monkeypatch, **MATCHING_EXTRAS["alt"])
    assert sync_master_data(store) == default_counts
    report = export_invoices(store)
    assert (report.booked, report.marked, report.skipped, report.failures) == (
        default_report.booked,
        default_report.marked,
        default_report.skipped,
        default_report.failures,
    )
    assert_booked_once(env, BOOKABLE)  # with their PDFs, from the alt route
    assert outcome(env) == expected
    calls = env.calls("qics")
    assert (
        calls["GET SalesInvoiceLine"]
        and calls["GET Invoice/Pdf"] == 4  # N2026004's: none there
        and "GET OverviewInvoiceLine" not in calls
    )


def test_default_extras_fail_against_the_alt_profile_as_production_would(env, tmp_path, monkeypatch):
    store = start(env, tmp_path, "alt", "refused")
    with pytest.raises(AuthenticationError, match="invalid_client, sent in the request body"):
        sync_master_data(store)
    with pytest.raises(AuthenticationError, match="invalid_client"):
        export_invoices(store)
    # authentication right, the rest default: master data goes through (no enum in its queries),
    # the export's query of processed invoices is refused (a type-qualified enum literal)
    set_qics_extras(monkeypatch, **{k: MATCHING_EXTRAS["alt"][k] for k in AUTH})
    clear_process_cache()
    counts = sync_master_data(store)
    assert counts["customers"][2:] == (1, ["10006"])
    with pytest.raises(
        ProtocolError, match="query rejected: .*InvoiceHeaderState' is not defined in the model"
    ):
        export_invoices(store)
    assert bookings(env) == {}


def test_every_entity_state_the_export_writes_carries_the_profile_s_entity_type(env, tmp_path, monkeypatch):
    """invoice_entity_type is the one place: the marks (and their look-up) as well as the errors."""
    store = start(env, tmp_path, "default", "entity-type")
    sync_master_data(store)
    set_qics_extras(monkeypatch, invoice_entity_type="General")
    report = export_invoices(store)
    assert report.marked == 3 and report.failed == 1
    states = env.state("qics")["entities"]["EntityState"]
    assert {(s["IsError"], s["EntityType"]) for s in states} == {(False, "General"), (True, "General")}
    assert export_invoices(store).marked == 0  # marked already: found by its natural key, not again
    assert len(env.state("qics")["entities"]["EntityState"]) == len(states)
