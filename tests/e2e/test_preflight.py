"""The go-live preflight (issue 15, section 3) against the emulators: as a command and as the
manual DAG king_qics__preflight, read-only and with the write probe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sandbox.king.wire import MATCHING_EXTRAS as KING_EXTRAS
from sandbox.qics.profile import MATCHING_EXTRAS
from tests.demo_data import load_fixture

ROOT = Path(__file__).resolve().parents[2]
QICS_ALTERNATIVE = MATCHING_EXTRAS["alt"]
AUTH = ("oauth_client_auth", "api_key_header", "api_key")


def preflight(*args: str) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "king_qics.preflight", "--administration", "noord", *args],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=dict(os.environ),
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def rows(output: str) -> dict[str, str]:
    """check name -> its result text, from the printed table."""
    out = {}
    for line in output.splitlines():
        if line.startswith(("King  ", "Qics  ")):
            api, rest = line[:4], line[6:]
            name, _, result = rest.partition("  ")
            out[f"{api} {name.strip()}"] = result.strip()
    return out


def set_extras(monkeypatch, conn_id: str, extras: dict) -> None:
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    conn = json.loads(os.environ[name])
    conn["extra"] = {**conn["extra"], **extras}
    monkeypatch.setenv(name, json.dumps(conn))


def test_the_preflight_passes_against_the_emulators_in_their_default_profile(connections, state_store):
    status, output = preflight()
    assert status == 0, output
    found = rows(output)
    assert all(result.startswith(("ok", "unknown")) for result in found.values()), found
    assert {
        "King login",
        "King table DEB",
        "King booking look-up",
        "King sales journal",
        "Qics token refresh",
    } <= set(found)
    assert "-> ready" in output
    assert json.loads(os.environ["AIRFLOW_CONN_KING_NOORD"])["extra"]["partner_key"] not in output


def test_another_king_profile_shows_exactly_the_differing_rows_and_their_settings(
    connections, state_store, monkeypatch
):
    connections.admin("king", "POST", "profile", json={"name": "alt"})
    status, output = preflight()
    assert status == 1, output
    differing = {name: result for name, result in rows(output).items() if result.startswith("differs")}
    assert set(differing) == {"King booking look-up", "King period dates"}, differing
    assert "orderby_separator" in output and "period_dates_table" in output
    set_extras(monkeypatch, "king_noord", KING_EXTRAS["alt"])
    status, output = preflight()
    assert status == 0, output


def test_another_qics_profile_shows_exactly_the_differing_rows_and_their_settings(
    connections, state_store, monkeypatch
):
    connections.admin("qics", "POST", "profile", json={"name": "alt"})
    status, output = preflight()  # the default client auth: refused at the token endpoint
    assert status == 1 and rows(output)["Qics token refresh"].startswith("differs: an access token vs")
    assert "oauth_client_auth" in output
    set_extras(monkeypatch, "qics_sandbox", {k: QICS_ALTERNATIVE[k] for k in AUTH})
    status, output = preflight()
    assert status == 1, output
    found = rows(output)
    differing = {name for name, result in found.items() if result.startswith("differs")}
    assert differing == {
        "Qics set OverviewInvoiceLine",  # served as SalesInvoiceLine
        "Qics enum InvoiceHeaderState",  # Processed is served as Final
        "Qics enum InvoiceHeaderType",  # CreditNote as Credit
        "Qics invoice query",  # type-qualified enum literals refused
    }, found
    assert "member Processed vs Concept, Approved, Final, Rejected" in found["Qics enum InvoiceHeaderState"]
    for setting in (
        "invoice_line_set",
        "invoice_processed_state",
        "credit_note_type",
        "enum and date literal",
    ):
        assert setting in output, setting
    set_extras(monkeypatch, "qics_sandbox", QICS_ALTERNATIVE)
    status, output = preflight()
    assert status == 0, output
    assert rows(output)["Qics PDF"].startswith("ok") and rows(output)["Qics lines"].startswith("ok")


def test_the_write_probe_books_reads_back_and_deletes_one_entry(connections, state_store):
    status, output = preflight("--write-probe", "--journal", "90")
    assert status == 0, output
    found = rows(output)
    for name in (
        "King write probe",
        "King Primarykey",
        "King FACT numbering",
        "King marker read-back",
        "King PDF read-back",
        "King probe removed",
    ):
        assert found[name].startswith("ok"), (name, found[name])
    left = [r for r in connections.state("king")["administrations"][0]["tables"]["BOE"] if r["DAGB"] == 90]
    assert left == []
    # a test sales journal that numbers invoices itself: reported (not blocking), the probe still works
    fixture = load_fixture()
    journal = {
        "NR": 71,
        "ZKSL": "VERKOOPTEST",
        "OMSCHR": "Verkoop test",
        "SRT": "V",
        "FACT": "9000",
        "BLOK": "N",
    }
    fixture["king"]["administrations"][0]["tables"]["DAGBOEK"].append(journal)
    fixture["king"]["administrations"][0]["journals_numbering_fact"] = [71]
    connections.admin("king", "POST", "load", json={**fixture["king"], "_base_dir": fixture["_base_dir"]})
    status, output = preflight("--write-probe", "--journal", "71")
    found = rows(output)
    assert status == 0, output
    assert found["King FACT numbering"].startswith("differs") and "9001" in found["King FACT numbering"]
    assert found["King marker read-back"].startswith("ok") and found["King probe removed"].startswith("ok")


def test_the_preflight_dag_checks_the_chosen_administration(run_dag, connections, state_store):
    dag_run, states = run_dag("king_qics__preflight", administration="noord")
    assert states == {"preflight_noord": "success", "preflight_zuid": "skipped"}
    connections.admin("king", "POST", "profile", json={"name": "alt"})
    _, states = run_dag("king_qics__preflight", administration="noord")
    assert states["preflight_noord"] == "failed"


def test_ambiguous_article_vat_letters_and_another_page_size_are_named(
    connections, state_store, monkeypatch, tmp_path
):
    fixture = load_fixture()
    tables = fixture["king"]["administrations"][0]["tables"]
    tables["BTW"].append({**tables["BTW"][1], "NR": 8, "ZKSL": "BTW8", "OMSCHR": "Btw hoog diensten"})
    fixture["qics"]["page_size"] = 3
    for api in ("king", "qics"):
        connections.admin(api, "POST", "load", json={**fixture[api], "_base_dir": fixture["_base_dir"]})
    status, output = preflight()
    found = rows(output)
    assert status == 1, output
    assert found["King article VAT codes"].startswith("differs: one BTW row per letter vs B: 2 BTW rows")
    assert found["Qics paging"].startswith("differs: pages of 100 vs 3 (@odata.nextLink)")
    assert "(not blocking)" in found["Qics paging"]
    # the two settings that answer them: defaults.item_vat_codes, and the profile's server_page_size
    config = (ROOT / "include" / "administrations.yaml").read_text(encoding="utf-8")
    assert config.count("customer_vat_codes: {I: 3}") == 2
    config = config.replace(
        "customer_vat_codes: {I: 3}", "customer_vat_codes: {I: 3}\n      item_vat_codes: {B: 8}"
    )
    (tmp_path / "administrations.yaml").write_text(config, encoding="utf-8")
    monkeypatch.setenv("KING_QICS_CONFIG", str(tmp_path / "administrations.yaml"))
    set_extras(monkeypatch, "qics_sandbox", {"server_page_size": 3})
    status, output = preflight()
    found = rows(output)
    assert found["King article VAT codes"] == "ok: BTW.BTWPL: B -> 8, L -> 2", found
    assert found["Qics paging"] == "ok: pages of 3 with @odata.nextLink", found
    assert status == 0, output
