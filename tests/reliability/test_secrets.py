"""Secrets: after a demo-sized run with faults (all three DAGs of both demo administrations), no
partner key, environment code, client secret, refresh or access token or King session id appears
in any task log line, exception, XCom value, rendered template field or anywhere else in the
Airflow metadata database or the sync-state store.

The demo fixture runs with distinctive credentials (the demo's own, such as environment code
00000, are too generic to search for). Tokens and session ids are found by their shape too, so
the ones the run saw but no state lists are covered as well.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
from pathlib import Path

import pytest

from sandbox import universe
from tests.demo_data import load_fixture

pytestmark = pytest.mark.reliability
PARTNER_KEY = "kqs-partner-key-7f3a9c51d2"
ENVIRONMENT_CODES = {"00000": "ENV-7QX4K", "31337": "ENV-9ZP2M"}
CLIENT_SECRET = "kqs-client-secret-5be1d0a8"
FIRST_REFRESH_TOKEN = "kqs-refresh-token-0-93ac17"
# What the sandboxes issue: King session ids, Qics access and refresh tokens. A token shape counts
# only where it starts a token: inside a longer base64url run (a Fernet ciphertext of the state
# store, say) "rt-" and 32 more characters turn up by chance, about once in 2,500 ciphertexts. The
# tokens the run was issued are also searched for literally, which finds them anywhere.
_START = r"(?<![A-Za-z0-9_-])"
SHAPES = {
    "king session id": re.compile(r"\d{5}/\d+@d\d+;CSW"),
    "qics access token": re.compile(_START + r"at-[A-Za-z0-9_-]{32}"),
    "qics refresh token": re.compile(_START + r"rt-[A-Za-z0-9_-]{32}"),
}
DAGS = [
    f"king_qics__{adm}__{kind}"
    for adm in ("noord", "zuid")
    for kind in ("master_data", "projects_employees", "invoice_export")
]
FAULTS = [
    {"kind": "http_500", "probability": 0.05},
    {"kind": "http_429", "probability": 0.05, "retry_after": 0.05},
    {"kind": "expire_session", "probability": 0.08},  # re-logins and token refreshes mid-run
]


def secrets_fixture() -> dict:
    fixture = load_fixture()
    fixture["king"]["partner_keys"] = [PARTNER_KEY]
    for adm in fixture["king"]["administrations"]:
        adm["environment_code"] = ENVIRONMENT_CODES[adm["environment_code"]]
    fixture["qics"]["clients"] = [
        {
            "client_id": universe.QICS_CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": FIRST_REFRESH_TOKEN,
            "redirect_uri": universe.QICS_REDIRECT_URI,
        }
    ]
    return fixture


def set_connections(monkeypatch) -> None:
    for adm in universe.ADMINISTRATIONS:
        name = f"AIRFLOW_CONN_KING_{adm['id'].upper()}"
        conn = json.loads(os.environ[name])
        conn["extra"] = {
            **conn["extra"],
            "partner_key": PARTNER_KEY,
            "environment_code": ENVIRONMENT_CODES[adm["environment_code"]],
        }
        monkeypatch.setenv(name, json.dumps(conn))
    conn = json.loads(os.environ["AIRFLOW_CONN_QICS_SANDBOX"])
    conn["extra"] = {**conn["extra"], "client_secret": CLIENT_SECRET, "refresh_token": FIRST_REFRESH_TOKEN}
    monkeypatch.setenv("AIRFLOW_CONN_QICS_SANDBOX", json.dumps(conn))


def leaks(text: str, secrets: list[str]) -> list[str]:
    found = [secret for secret in secrets if secret in text]
    found += [f"{name}: {m.group(0)}" for name, shape in SHAPES.items() for m in shape.finditer(text)]
    return found


def test_the_scan_finds_a_token_but_not_its_shape_inside_a_ciphertext():
    """The state store keeps tokens as Fernet ciphertexts (base64url), where the token shape turns up
    by chance (CI once failed on one); a token itself is found in text, quoted or after a prefix."""
    import secrets as random_tokens

    from cryptography.fernet import Fernet

    fernet = Fernet(Fernet.generate_key())
    token = "rt-" + random_tokens.token_urlsafe(24)
    ciphertexts = (fernet.encrypt(token.encode()).decode() for _ in range(200_000))
    lookalike = next(text for text in ciphertexts if re.search(r"rt-[A-Za-z0-9_-]{32}", text))
    assert leaks(lookalike, [token]) == []
    for text in (f"refresh_token={token}&", f"'{token}'", f"Bearer {token.replace('rt-', 'at-')}"):
        assert leaks(text, []), text
    assert leaks(f"x{token}y", [token]) == [token]


def database_texts(path: Path) -> dict[str, str]:
    """Every table of an SQLite database as text (all rows, all columns), plus the raw file and WAL."""
    texts = {}
    with sqlite3.connect(path) as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            rows = db.execute(f'SELECT * FROM "{table}"').fetchall()  # noqa: S608 - table names from the db
            texts[f"{path.name}:{table}"] = "\n".join(
                repr(value.decode("utf-8", "replace") if isinstance(value, bytes) else value)
                for row in rows
                for value in row
            )
    for raw in (path, path.with_name(path.name + "-wal")):
        if raw.exists():
            texts[f"{raw.name} (raw bytes)"] = raw.read_bytes().decode("latin-1")
    return texts


EXCEPTION_PATTERN = re.compile(r"\b\w*(Exception|Error)\b: ")


def provoked_errors(store) -> list[str]:
    """Errors of refused credentials, with their tracebacks: wrong partner key, wrong environment
    code, wrong client secret, a burnt refresh token."""
    import traceback

    from king_qics.errors import KingQicsError
    from king_qics.hooks.king import KingFinanceHook
    from king_qics.hooks.qics import QicsMilestonesHook
    from king_qics.hooks.qics.oauth import clear_process_cache

    texts = []
    for hook in (
        lambda: KingFinanceHook("king_noord_wrong_key", max_attempts=1).login(),
        lambda: KingFinanceHook("king_noord_wrong_env", max_attempts=1).login(),
        lambda: list(
            QicsMilestonesHook("qics_wrong_secret", token_store=store.tokens, max_attempts=1).iter_records(
                "VatCode"
            )
        ),
        lambda: list(
            QicsMilestonesHook("qics_burnt_token", token_store=store.tokens, max_attempts=1).iter_records(
                "VatCode"
            )
        ),
    ):
        clear_process_cache()
        try:
            hook()
        except KingQicsError as exc:
            texts.append("".join(traceback.format_exception(exc)))
    return texts


def test_no_secret_appears_after_a_demo_run_with_faults(
    run_dag, connections, state_store, monkeypatch, caplog, capfd, figures
):
    sandbox = connections
    sandbox.load(secrets_fixture())
    set_connections(monkeypatch)
    caplog.set_level(logging.DEBUG)
    before = {api: sandbox.admin(api, "GET", "faults")["fired"] for api in ("king", "qics")}
    sandbox.faults("king", *FAULTS, seed=7)
    sandbox.faults("qics", *FAULTS, seed=8)
    states = {dag_id: run_dag(dag_id)[1] for dag_id in DAGS}
    after = {api: sandbox.admin(api, "GET", "faults")["fired"] for api in ("king", "qics")}
    fired = {api: {k: n - before[api].get(k, 0) for k, n in after[api].items()} for api in after}
    sandbox.clear_faults()

    oauth = sandbox.state("qics")["oauth"]
    refresh_tokens = [grant["token"] for grant in oauth["refresh_tokens"]]
    secrets = [
        PARTNER_KEY,
        *ENVIRONMENT_CODES.values(),
        CLIENT_SECRET,
        *refresh_tokens,
        *oauth["access_tokens"],
    ]
    # the scan finds what it looks for: the connections themselves hold the secrets
    connection_text = " ".join(os.environ[n] for n in os.environ if n.startswith("AIRFLOW_CONN_"))
    assert set(leaks(connection_text, secrets)) >= {PARTNER_KEY, CLIENT_SECRET, *ENVIRONMENT_CODES.values()}
    assert oauth["refresh_grants"] >= 2, "the run should have refreshed the access token more than once"
    assert len(refresh_tokens) >= 3

    wrong = {"WRONG_KEY": ("king_noord", "partner_key"), "WRONG_ENV": ("king_noord", "environment_code")}
    wrong_values = {"WRONG_KEY": "kqs-wrong-partner-key-4411", "WRONG_ENV": "ENV-WRONG-8K"}
    for suffix, (base, field) in wrong.items():
        conn = json.loads(os.environ[f"AIRFLOW_CONN_{base.upper()}"])
        conn["extra"] = {**conn["extra"], field: wrong_values[suffix]}
        monkeypatch.setenv(f"AIRFLOW_CONN_{base.upper()}_{suffix}", json.dumps(conn))
    qics_conn = json.loads(os.environ["AIRFLOW_CONN_QICS_SANDBOX"])
    wrong_values["WRONG_SECRET"] = "kqs-wrong-client-secret-77"
    monkeypatch.setenv(
        "AIRFLOW_CONN_QICS_WRONG_SECRET",
        json.dumps(
            {**qics_conn, "extra": {**qics_conn["extra"], "client_secret": wrong_values["WRONG_SECRET"]}}
        ),
    )
    monkeypatch.setenv(  # the first refresh token was used by the run: burnt
        "AIRFLOW_CONN_QICS_BURNT_TOKEN",
        json.dumps({**qics_conn, "extra": {**qics_conn["extra"], "refresh_token": FIRST_REFRESH_TOKEN}}),
    )
    provoked = provoked_errors(state_store)
    assert len(provoked) == 4, provoked
    secrets += list(wrong_values.values())

    home = Path(os.environ["AIRFLOW_HOME"])
    captured = capfd.readouterr()
    log_text = caplog.text + captured.out + captured.err
    exceptions = EXCEPTION_PATTERN.findall(log_text) + provoked
    texts = {
        "log records": caplog.text,
        "stdout/stderr": captured.out + captured.err,
        "provoked exceptions": "\n".join(provoked),
        **{str(p): p.read_text("utf-8", "replace") for p in (home / "logs").rglob("*") if p.is_file()},
        **database_texts(home / "airflow.db"),
        **database_texts(home / "king_qics_state.db"),
    }
    with sqlite3.connect(home / "airflow.db") as db:
        xcoms = db.execute("SELECT count(*) FROM xcom").fetchone()[0]
        rendered = db.execute("SELECT count(*) FROM rendered_task_instance_fields").fetchone()[0]
    found = {where: leaks(text, secrets) for where, text in texts.items()}
    found = {where: hits for where, hits in found.items() if hits}
    figures(
        "secrets",
        {
            "dag_runs": len(DAGS),
            "task_states": states,
            "faults_injected": fired,
            "secrets_searched": len(secrets) + len(SHAPES),
            "refresh_grants": oauth["refresh_grants"],
            "log_records_scanned": len(caplog.records),
            "exceptions_in_logs": len(exceptions) - len(provoked),
            "provoked_credential_errors": len(provoked),
            "xcom_rows_in_db": xcoms,
            "rendered_field_rows_in_db": rendered,
            "places_scanned": len(texts),
            "leaks": found,
        },
    )
    assert xcoms > 0 and rendered > 0 and exceptions, "nothing to scan: the run did not happen as intended"
    assert found == {}
