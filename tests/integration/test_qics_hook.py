"""QicsMilestonesHook against the Qics sandbox over real HTTP: OAuth, reads, writes, faults, secrets."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import time
from decimal import Decimal

import pytest

from king_qics.errors import (
    AuthenticationError,
    ConfigurationError,
    OutcomeUnknownError,
    ProtocolError,
    RecordValidationError,
)
from king_qics.hooks.qics import QicsMilestonesHook
from king_qics.hooks.qics.oauth import clear_process_cache
from king_qics.state import StateStore
from sandbox import universe
from tests.demo_data import ROOT
from tests.demo_data import qics_only_fixture as demo_fixture

FAST = {"timeout": 2.0, "max_attempts": 3, "backoff_initial": 0.01, "backoff_max": 0.2}


def conn_json(sb, **extra) -> str:
    extras = {
        "client_id": universe.QICS_CLIENT_ID,
        "client_secret": universe.QICS_CLIENT_SECRET,
        "refresh_token": universe.QICS_INITIAL_REFRESH_TOKEN,
        "company_id": 1,
        **extra,
    }
    return json.dumps({"conn_type": "qics_milestones", "host": sb.qics_url, "extra": extras})


@pytest.fixture
def sb(request, monkeypatch):
    handle = request.getfixturevalue("qics_sandbox")  # demo data loaded, faults off
    clear_process_cache()
    monkeypatch.setenv("AIRFLOW_CONN_QICS_TEST", conn_json(handle))
    return handle


@pytest.fixture
def store(tmp_path):
    state = StateStore(f"sqlite:///{tmp_path}/state.db")
    state.create_schema()
    return state


@pytest.fixture
def hook(sb, store):
    return QicsMilestonesHook("qics_test", token_store=store.tokens, **FAST)


# -- reads -----------------------------------------------------------------------------------------


def test_reads_are_typed_records(hook):
    """Ids come as int, decimals as Decimal, booleans as bool (the wire sends ids and decimals as
    strings); a field the service leaves empty is None."""
    records = list(hook.iter_records("VatCode", filter="CompanyId eq 1"))
    assert [r["Code"] for r in records] == ["0", "1", "2", "3"]
    assert all(type(r["VatCodeId"]) is int and type(r["CompanyId"]) is int for r in records)
    assert [r["Percentage"] for r in records] == [Decimal("0"), Decimal("21"), Decimal("9"), Decimal("0")]
    assert all(type(r["IsDefault"]) is bool and r["IcpReturn"] is None for r in records)


def test_read_select_and_top(hook):
    query = {"filter": "CompanyId eq 1", "select": ["CustomerCode", "Name"], "top": 2}
    records = list(hook.iter_records("CustomerCompany", **query))
    assert len(records) == 2 and all(set(r) <= {"CustomerCode", "Name", "@odata.etag"} for r in records)


@pytest.mark.parametrize("n", [0, 1, 100, 101])
def test_read_paging_boundaries(sb, hook, n):
    fixture = demo_fixture()
    fixture["qics"]["entities"]["CostCenter"] = [
        {"CompanyId": "1", "Code": f"{i:04d}", "Name": f"KP {i}", "IsActive": True} for i in range(n)
    ]
    sb.load(fixture)
    records = list(hook.iter_records("CostCenter"))
    assert [r["Code"] for r in records] == [f"{i:04d}" for i in range(n)]
    full_last_page = n > 0 and n % 100 == 0  # a full page without a next link: looked past once
    assert sb.calls("qics")["GET CostCenter"] == max(1, -(-n // 100)) + full_last_page


def test_paging_iteration_cap(sb, store):
    fixture = demo_fixture()
    fixture["qics"]["page_size"] = 2
    sb.load(fixture)
    hook = QicsMilestonesHook("qics_test", token_store=store.tokens, max_pages=3, **FAST)
    with pytest.raises(ProtocolError, match="more than 3 pages"):
        list(hook.iter_records("InvoiceLine"))


def test_get(hook):
    assert hook.get("CustomerCompany", "1")["CustomerCode"] == "10000"
    assert hook.get("CustomerCompany", 999) is None


def test_read_bad_query_is_protocol_error(hook):
    with pytest.raises(ProtocolError, match="Nope"):
        list(hook.iter_records("VatCode", filter="Nope eq 1"))


# -- writes ----------------------------------------------------------------------------------------


def test_create_and_update(hook):
    record = {
        "CompanyId": 1,
        "CustomerCode": "10007",
        "Name": "Nieuw",
        "IsActive": True,
        "PriceIndex": Decimal("1.25"),
        "VatCodeId": "2",
    }
    saved = hook.create("CustomerCompany", record)
    assert (
        saved["CustomerCode"] == "10007"
        and saved["PriceIndex"] == Decimal("1.25")
        and saved["VatCodeId"] == 2
    )
    updated = hook.update("CustomerCompany", saved["CustomerCompanyId"], {**record, "Name": "Anders"})
    assert updated["Name"] == "Anders" and updated["CustomerCompanyId"] == saved["CustomerCompanyId"]


def test_validation_error_names_the_field(hook):
    with pytest.raises(RecordValidationError) as info:
        hook.create(
            "CustomerCompany",
            {"CompanyId": 1, "CustomerCode": "10008", "Name": "x" * 60, "IsActive": True},
            natural_key={"CustomerCode": "10008", "CompanyId": 1},
        )
    assert "Name" in info.value.message and "50" in info.value.message
    assert info.value.key == {"CustomerCode": "10008", "CompanyId": 1}


def test_update_unknown_id(hook):
    with pytest.raises(RecordValidationError, match="not found"):
        hook.update("CostCenter", 999, {"Code": "1", "Name": "x", "IsActive": True})


def test_create_with_drop_after_commit_and_natural_key_creates_one(sb, hook):
    sb.faults("qics", {"kind": "drop_after_commit", "count": 1, "operations": ["POST CustomerCompany"]})
    record = {"CompanyId": 1, "CustomerCode": "10010", "Name": "Eenmalig", "IsActive": True}
    saved = hook.create("CustomerCompany", record, natural_key={"CustomerCode": "10010", "CompanyId": 1})
    assert saved["CustomerCode"] == "10010"
    matching = [c for c in sb.state("qics")["entities"]["CustomerCompany"] if c["CustomerCode"] == "10010"]
    assert len(matching) == 1
    assert sb.calls("qics")["POST CustomerCompany"] == 1


def test_create_after_500_without_landing_posts_once_more(sb, hook):
    sb.faults("qics", {"kind": "http_500", "count": 1, "operations": ["POST CostCenter"]})
    saved = hook.create(
        "CostCenter",
        {"CompanyId": 1, "Code": "500", "Name": "X", "IsActive": True},
        natural_key={"Code": "500", "CompanyId": 1},
    )
    assert saved["Code"] == "500" and sb.calls("qics")["POST CostCenter"] == 2
    assert len(sb.state("qics")["entities"]["CostCenter"]) == 1


def test_create_without_natural_key_reports_unknown_outcome(sb, hook):
    sb.faults("qics", {"kind": "drop_after_commit", "count": 1, "operations": ["POST CostCenter"]})
    with pytest.raises(OutcomeUnknownError):
        hook.create("CostCenter", {"CompanyId": 1, "Code": "600", "Name": "X", "IsActive": True})


# -- faults survived -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http_500", "http_503", "http_429"])
def test_transient_faults_are_retried(sb, hook, kind):
    sb.faults("qics", {"kind": kind, "count": 2, "operations": ["GET VatCode"], "retry_after": 0.05})
    assert len(list(hook.iter_records("VatCode"))) == 8
    assert sb.calls("qics")["GET VatCode"] == 3


def test_persistent_5xx_becomes_transient_error(sb, hook):
    from king_qics.errors import TransientError

    sb.faults("qics", {"kind": "http_503", "operations": ["GET VatCode"]})
    with pytest.raises(TransientError):
        list(hook.iter_records("VatCode"))


def test_latency_beyond_timeout_is_retried(sb, store):
    hook = QicsMilestonesHook("qics_test", token_store=store.tokens, **{**FAST, "timeout": 0.3})
    list(hook.iter_records("Company"))  # token first
    sb.faults("qics", {"kind": "latency", "latency_seconds": 0.6, "count": 1, "operations": ["GET VatCode"]})
    assert len(list(hook.iter_records("VatCode"))) == 8


def test_expired_token_mid_run_is_recovered(sb, hook):
    first = list(hook.iter_records("VatCode"))
    sb.faults("qics", {"kind": "expire_session", "count": 1, "operations": ["GET CustomerCompany"]})
    assert len(list(hook.iter_records("CustomerCompany"))) == 8
    assert len(list(hook.iter_records("VatCode"))) == len(first)
    assert sb.calls("qics")["POST token"] == 2


def test_token_drop_after_commit_then_auth_error_message(sb, hook):
    sb.faults("qics", {"kind": "drop_after_commit", "count": 1, "operations": ["POST token"]})
    with pytest.raises(AuthenticationError, match="Re-authorize"):
        list(hook.iter_records("Company"))


def test_revoked_refresh_token(sb, hook):
    sb.admin("qics", "POST", "oauth/revoke")
    with pytest.raises(AuthenticationError, match="put the new refresh token in connection 'qics_test'"):
        list(hook.iter_records("Company"))


def test_token_is_reused_across_hooks_and_rotation_is_persisted(sb, store):
    list(QicsMilestonesHook("qics_test", token_store=store.tokens, **FAST).iter_records("Company"))
    clear_process_cache()  # another process: only the state store is shared
    list(QicsMilestonesHook("qics_test", token_store=store.tokens, **FAST).iter_records("Company"))
    assert sb.calls("qics")["POST token"] == 1
    sb.admin("qics", "POST", "oauth/expire")
    clear_process_cache()
    list(
        QicsMilestonesHook("qics_test", token_store=store.tokens, **FAST).iter_records("Company")
    )  # uses the rotated token
    assert sb.calls("qics")["POST token"] == 2
    assert sb.state("qics")["oauth"]["refresh_grants"] == 2


def test_reauthorized_connection_restarts_the_chain(sb, store, monkeypatch):
    list(QicsMilestonesHook("qics_test", token_store=store.tokens, **FAST).iter_records("Company"))
    # the user re-authorizes: a fresh refresh token goes into the connection
    fixture = demo_fixture()
    fixture["qics"]["clients"][0]["refresh_token"] = "re-authorized-token"
    sb.load(fixture)
    monkeypatch.setenv("AIRFLOW_CONN_QICS_TEST", conn_json(sb, refresh_token="re-authorized-token"))
    clear_process_cache()
    assert (
        len(list(QicsMilestonesHook("qics_test", token_store=store.tokens, **FAST).iter_records("Company")))
        == 2
    )


def test_two_processes_refresh_concurrently_without_burning_the_token(sb, store, tmp_path):
    sb.faults("qics", {"kind": "latency", "latency_seconds": 0.5, "operations": ["POST token"]})
    script = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "plugins")!r}]
        from king_qics.hooks.qics import QicsMilestonesHook
        from king_qics.state import StateStore
        store = StateStore({store.url!r})
        hook = QicsMilestonesHook("qics_test", token_store=store.tokens, timeout=5, max_attempts=2)
        print(len(list(hook.iter_records("Company"))))
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=90) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err[-2000:]
        assert out.strip().splitlines()[-1] == "2"
    oauth = sb.state("qics")["oauth"]
    assert oauth["refresh_grants"] == 1
    assert sb.calls("qics")["POST token"] == 1


def test_a_slow_token_refresh_holds_no_database_lock(sb, store, tmp_path):
    """Other tasks write to the state store while a refresh waits for Qics (SQLite: one writer)."""
    import sqlite3
    import threading

    sb.faults("qics", {"kind": "latency", "latency_seconds": 2, "operations": ["POST token"]})
    hook = QicsMilestonesHook("qics_test", token_store=store.tokens, timeout=5, max_attempts=1)
    reader = threading.Thread(target=lambda: list(hook.iter_records("Company")))
    reader.start()
    time.sleep(0.8)  # the token request is under way
    other = sqlite3.connect(store.url.removeprefix("sqlite:///"), timeout=0.5, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another task's write: must not wait for the HTTP call
    other.execute(
        "INSERT INTO watermarks (administration, king_table, read_until) VALUES ('x', 'DEB', '2026-12-01')"
    )
    other.execute("COMMIT")
    other.close()
    reader.join(30)
    assert sb.calls("qics")["POST token"] == 1 and sb.state("qics")["oauth"]["refresh_grants"] == 1


# -- invoices, entity state, test_connection -------------------------------------------------------


def test_processed_invoices(hook):
    invoices = hook.processed_invoices(1)
    numbers = [i["InvoiceNumber"] for i in invoices]
    assert "N2026001" in numbers and "N2025099" in numbers and len(invoices) == 7  # Approved one excluded
    multi = next(i for i in invoices if i["InvoiceNumber"] == "N2026002")
    assert len(multi["lines"]) == 3 and multi["TotalAmountInclVat"] == Decimal("1731.50")
    assert sum(ln["AmountExclVat"] for ln in multi["lines"]) == multi["TotalAmountExclVat"]
    assert {ln["VatPercentage"] for ln in multi["lines"]} == {Decimal("21"), Decimal("9")}
    since = hook.processed_invoices("1", date_from="2026-10-01")
    assert "N2025099" not in [i["InvoiceNumber"] for i in since] and len(since) == 6
    credit = next(i for i in invoices if i["InvoiceHeaderType"] == "CreditNote")
    assert credit["TotalAmountExclVat"] < 0 and credit["OriginalInvoiceNumber"] == "N2026001"
    assert len(hook.processed_invoices(2)) == 3


def test_invoice_pdf(hook):
    content = hook.invoice_pdf(1)
    assert content.startswith(b"%PDF")
    assert hook.invoice_pdf(5) is None


def test_post_entity_state(sb, hook):
    saved = hook.post_entity_state(entity_id=1, data_source="KingFinance", data_source_key="70/2026001")
    assert saved["EntityStateId"] and saved["CompanyId"] == 1 and saved["IsError"] is False
    assert sb.state("qics")["entities"]["EntityState"][0]["DataSourceKey"] == "70/2026001"


def test_test_connection(sb, hook, store, monkeypatch):
    ok, message = hook.test_connection()
    assert ok and "2 companies" in message
    monkeypatch.setenv("AIRFLOW_CONN_QICS_TEST", conn_json(sb, client_secret="wrong"))
    clear_process_cache()
    ok, message = QicsMilestonesHook("qics_test", token_store=store.tokens, **FAST).test_connection()
    assert not ok and "invalid_client" in message


def test_a_hook_without_a_token_store_never_spends_the_refresh_token(sb, store, monkeypatch):
    """Airflow's Test button builds the hook bare: it checks the client only, and a request without a
    token store is refused before anything is sent (a rotated token would be lost)."""
    monkeypatch.setenv("AIRFLOW_CONN_QICS_TEST", conn_json(sb))
    clear_process_cache()
    ok, message = QicsMilestonesHook("qics_test", **FAST).test_connection()
    assert ok and "accepts the client" in message, message
    assert sb.state("qics")["oauth"]["refresh_grants"] == 0  # the seed is still good
    with pytest.raises(ConfigurationError, match="needs a token_store"):
        list(QicsMilestonesHook("qics_test", **FAST).iter_records("Company"))
    monkeypatch.setenv("AIRFLOW_CONN_QICS_TEST", conn_json(sb, client_secret="wrong"))
    ok, message = QicsMilestonesHook("qics_test", **FAST).test_connection()
    assert not ok and "invalid_client" in message
    monkeypatch.setenv("AIRFLOW_CONN_QICS_TEST", conn_json(sb))
    companies = list(
        QicsMilestonesHook("qics_test", token_store=store.tokens, **FAST).iter_records("Company")
    )
    assert len(companies) == 2 and sb.state("qics")["oauth"]["refresh_grants"] == 1  # the seed, used once


def test_html_error_page_is_protocol_error(sb, hook, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_QICS_TEST", conn_json(sb))
    list(hook.iter_records("Company"))

    class Fake:
        status_code = 200
        headers = {"Content-Type": "text/html"}
        text = "<html>Server Error</html>"
        content = text.encode()

        def json(self):
            raise ValueError

    monkeypatch.setattr(hook, "send", lambda *a, **k: Fake())
    with pytest.raises(ProtocolError, match="HTML page"):
        list(hook.iter_records("Company"))


# -- secrets stay out of the logs ------------------------------------------------------------------


def test_no_secret_in_logs(sb, store, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    sb.faults(
        "qics",
        {"kind": "expire_session", "count": 1, "operations": ["GET CustomerCompany"]},
        {"kind": "http_503", "count": 1, "operations": ["GET VatCode"]},
    )
    hook = QicsMilestonesHook("qics_test", token_store=store.tokens, **FAST)
    list(hook.iter_records("VatCode"))
    list(hook.iter_records("CustomerCompany"))
    hook.create("CostCenter", {"CompanyId": 1, "Code": "1", "Name": "A", "IsActive": True})
    hook.processed_invoices(1)
    hook.test_connection()
    sb.admin("qics", "POST", "oauth/revoke")
    sb.admin("qics", "POST", "oauth/expire")
    with pytest.raises(AuthenticationError) as info:
        list(hook.iter_records("Company"))
    captured = capsys.readouterr()
    text = caplog.text + captured.out + captured.err + str(info.value)
    tokens = [t["token"] for t in sb.state("qics")["oauth"]["refresh_tokens"]]
    secrets = [universe.QICS_CLIENT_SECRET, universe.QICS_INITIAL_REFRESH_TOKEN, *tokens]
    secrets += [t[3:] for t in tokens]  # the random part alone
    assert "qics" in caplog.text  # something was logged at all
    for secret in secrets:
        assert secret not in text
    with store.engine.connect() as conn:
        raw = " ".join(str(v) for row in conn.exec_driver_sql("SELECT * FROM oauth_tokens") for v in row)
    for secret in secrets:
        assert secret not in raw  # encrypted at rest
