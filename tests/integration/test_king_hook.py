"""KingFinanceHook against the running King emulator, over real HTTP."""

from __future__ import annotations

import json
import logging
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from king_qics.errors import (
    AuthenticationError,
    OutcomeUnknownError,
    ProtocolError,
    RecordValidationError,
    TransientError,
)
from king_qics.hooks.king import KingFinanceHook
from tests.king_records import create_record, delete_record, update_record

ROOT = Path(__file__).resolve().parents[2]
KING_DEMO = json.loads((ROOT / "sandbox" / "fixtures" / "demo.json").read_text(encoding="utf-8"))["king"]
KEY = "abcdefghijklmnopqrstuvwxyz"
FAST = {"timeout": 2, "backoff_initial": 0.05, "backoff_max": 0.2, "max_attempts": 4}


@pytest.fixture
def king(sandboxes, monkeypatch):
    sandboxes.load({"king": KING_DEMO, "qics": {}})
    connect(monkeypatch, sandboxes)
    return sandboxes


def connect(monkeypatch, sandbox, conn_id="KING_TEST", **extra):
    extra = {"partner_key": KEY, "environment_code": "00000", **extra}
    conn = {"conn_type": "king_finance", "host": sandbox.king_url, "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id}", json.dumps(conn))


def hook(**kwargs) -> KingFinanceHook:
    return KingFinanceHook("king_test", **{**FAST, **kwargs})


def load_with(king, **changes) -> None:
    fixture = json.loads(json.dumps(KING_DEMO))
    for table, rows in changes.pop("tables", {}).items():
        fixture["administrations"][0]["tables"][table] = rows
    fixture.update(changes)
    king.load({"king": fixture, "qics": {}})


def boe(**overrides) -> dict:
    row = {
        "DAGB": 70, "JR": 2026, "PN": 11, "DAT": date(2026, 11, 25), "REK": 10000, "TEGREK": 8000, "BTW": 1,
        "BEDRBOEK": Decimal("100.00"), "BEDRBTW": Decimal("21.00"), "FACT": "2026-0042",
        "BOEKSTUK": "2026-0042", "OMSCHR": "Advies november", "KPL": 100, "DATVERV": date(2026, 12, 25),
    }  # fmt: skip
    row.update(overrides)
    return row


# -- connection and session ------------------------------------------------------------------------


def test_test_connection_logs_in_and_out(king):
    assert hook().test_connection() == (True, "King Finance: logged in and out successfully")
    calls = king.calls("king")
    assert calls["Login"] == 1 and calls["Logout"] == 1
    assert king.state("king")["_active_sessions"] == 0


def test_proxy_environment_is_honoured(king, monkeypatch):
    """The session takes HTTP_PROXY / NO_PROXY from the environment (once, when it is created)."""
    from sandbox.server import free_port

    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    ok, message = hook(max_attempts=1).test_connection()
    assert not ok and "connection failed" in message

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert hook().test_connection()[0] is True
    assert king.calls("king")["Login"] == 1  # only the second hook reached the sandbox


def test_wrong_partner_key_is_an_authentication_error_and_not_retried(king, monkeypatch):
    connect(monkeypatch, king, partner_key="wrong")
    ok, message = hook().test_connection()
    assert not ok and "partnerkey" in message and "wrong" not in message
    with pytest.raises(AuthenticationError):
        hook().read_table("BTW", ["NR"])
    assert king.calls("king")["Login"] == 2


def test_password_is_the_partner_key_when_the_extra_is_empty(king, monkeypatch):
    conn = {
        "conn_type": "king_finance",
        "host": king.king_url,
        "password": KEY,
        "extra": {"environment_code": "31337"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_KING_TEST", json.dumps(conn))
    assert hook().get_adm_info({"BASALG": ["NAAM"]})["BASALG"]["NAAM"] == "Ingenieursbureau Zuid B.V."


def test_context_manager_reuses_one_session_and_logs_out(king):
    with hook() as h:
        h.read_table("BTW", ["NR"])
        h.read_table("KPL", ["NR"])
        h.get_adm_info()
    calls = king.calls("king")
    assert calls["Login"] == 1 and calls["Logout"] == 1 and calls["GetStamtabelRecords"] == 2


def test_soap_11_works_too(king):
    with hook(soap_version="1.1") as h:
        assert list(h.read_table("BTW", ["NR"])["NR"]) == [0, 1, 2, 3]


def test_an_expired_session_is_renewed_without_the_caller_noticing(king):
    with hook() as h:
        first = h.read_table("DEB", ["NR"])
        king.faults("king", {"kind": "expire_session", "count": 1, "operations": ["GetStamtabelRecords"]})
        second = h.read_table("DEB", ["NR"])
        assert len(first) == len(second) == 12
    assert king.calls("king")["Login"] == 2


def test_idle_timeout_and_keepsession(king):
    load_with(king, session_idle_minutes=0.01)
    with hook(keepalive_after=0.2) as h:
        h.read_table("BTW", ["NR"])
        time.sleep(0.3)  # idle beyond keepalive_after, within King's timeout: KeepSession keeps it
        h.read_table("BTW", ["NR"])
        time.sleep(0.8)  # beyond King's idle timeout: KeepSession is refused, a new Login follows
        h.read_table("BTW", ["NR"])
    calls = king.calls("king")
    assert calls["KeepSession"] == 2 and calls["Login"] == 2 and calls["GetStamtabelRecords"] == 3


# -- reads -----------------------------------------------------------------------------------------


def test_read_table_types_columns(king):
    with hook() as h:
        deb = h.read_table(
            "DEB", ["NR", "NAAM", "BLOK", "BETCOND", "HNR", "KRLIM", "MEDEWDEC", "BLOKDECLVA"], page_size=5
        )
        art = h.read_table("ART", "*")
        btw = h.read_table("BTW", ["NR", "PERC", "BTWPL"])
        kdr = h.read_table("KDR", ["NR", "DATAANVANG", "DATGEREED"])
    assert list(deb["NR"]) == list(range(10000, 10012))
    assert str(deb["NR"].dtype) == "Int64" and str(deb["BLOK"].dtype) == "boolean"
    assert bool(deb.loc[deb["NR"] == 10003, "BLOK"].item()) is True
    assert not deb.loc[deb["NR"] != 10003, "BLOK"].any()
    assert deb.loc[deb["NR"] == 10005, "MEDEWDEC"].item() == "SDEVRIES"
    assert deb["KRLIM"].isna().all() and deb["BLOKDECLVA"].isna().all()
    assert art.loc[art["NR"] == "ADV", "VERKPR"].item() == Decimal("125.00")
    assert "ARTGRP" in art.columns and str(art["ARTGRP"].dtype) == "Int64"
    assert list(btw["PERC"]) == [Decimal(0), Decimal(21), Decimal(9), Decimal(0)]
    assert (
        kdr["DATAANVANG"].iloc[1] == pd.Timestamp(2026, 4, 15) and pd.isna(kdr["DATAANVANG"].iloc[0]) is False
    )
    assert pd.api.types.is_datetime64_any_dtype(kdr["DATAANVANG"])


@pytest.mark.parametrize("count", [0, 1, 4, 5])
def test_paging_boundaries(king, count):
    load_with(king, tables={"DEB": KING_DEMO["administrations"][0]["tables"]["DEB"][:count]})
    with hook() as h:
        frame = h.read_table("DEB", ["NR", "NAAM"], page_size=4)
    assert len(frame) == count and frame["NR"].is_unique
    assert list(frame.columns) == ["NR", "NAAM"]
    assert king.calls("king")["GetStamtabelRecords"] == max(1, -(-count // 4))


def test_where_changed_since_and_order(king):
    with hook() as h:
        recent = h.read_table("DEB", ["NR"], changed_since=date(2026, 11, 1))
        assert list(recent["NR"]) == [10010, 10011]
        be = h.read_table("DEB", ["NR", "LAND"], where=[("LAND", "=", "BE")])
        assert list(be["NR"]) == [10004]
        blocked = h.read_table("DEB", ["NR"], where=[("BLOK", "=", True), ("NR", ">=", 10000)])
        assert list(blocked["NR"]) == [10003]
        projects = h.read_table("KDR", ["NR"], where=[("OMSCHR", "LIKE", "%<fase 2>%")])
        assert list(projects["NR"]) == [5003]
        employees = h.read_table("MEDEWERKER", ["ZKSL"], order_by="ACHTERNM")
        assert list(employees["ZKSL"]) == ["PBAKKER", "JJANSEN", "SDEVRIES"]
        pages = list(h.read_records("DEB", ["NR"], page_size=5))
        assert [len(rows) for rows, _ in pages] == [5, 5, 2]
        assert list(h.read_table("DEB", "naam", page_size=5).columns) == ["NAAM"]
        with pytest.raises(ProtocolError):
            h.read_table("NOPE", ["NR"])


def test_adm_info_and_closed_periods(king):
    from king_qics.sync.invoices.selection import king_refs

    with hook() as h:
        info = h.get_adm_info()
        assert info["BASFIN"]["AANTPER"] == 12
        refs = king_refs(h, [])
    # closed definitively up to 2025/14, for users up to 2026/9 (the demo's PERIODEINFO)
    assert [refs.closed(2024, 12), refs.closed(2025, 14), refs.closed(2026, 9)] == [True, True, True]
    assert [refs.closed(2026, 10), refs.closed(2026, 14)] == [False, False]


# -- master-data writes ----------------------------------------------------------------------------

TRICKY = "A < B > C & \"D\" 'E' ]]> café Ærø ü 😀"


def test_text_round_trips_exactly(king):
    with hook() as h:
        key = create_record(h, "DEB", {"ZKSL": "TRICKY", "NAAM": TRICKY, "OPM": TRICKY + "\n" + TRICKY})
        frame = h.read_table("DEB", ["NR", "NAAM", "OPM"], where=[("NR", "=", key)])
        assert frame["NAAM"].item() == TRICKY and frame["OPM"].item() == TRICKY + "\n" + TRICKY
        found = h.read_table("DEB", ["NR"], where=[("NAAM", "=", TRICKY)])
        assert list(found["NR"]) == [int(key)]
        update_record(h, "DEB", "NR", key, {"NAAM2": "]]><![CDATA[x"})
        assert h.read_table("DEB", ["NAAM2"], where=[("NR", "=", key)])["NAAM2"].item() == "]]><![CDATA[x"


def test_create_update_delete_and_batches(king):
    with hook() as h:
        assert create_record(h, "KPL", {"NR": 400, "ZKSL": "ICT", "OMSCHR": "ICT"}) == "400"
        with pytest.raises(RecordValidationError) as rejected:
            create_record(h, "KPL", {"NR": 400, "ZKSL": "ICT"})
        assert rejected.value.key == 400 and "400" in rejected.value.message
        assert create_record(h, "DEB", {"ZKSL": "EEN", "NAAM": "Een"}) == "10012"
        with pytest.raises(RecordValidationError, match="NAAM"):
            create_record(h, "DEB", {"ZKSL": "TWEE", "NAAM": "T" * 51})
        with pytest.raises(RecordValidationError, match="BETCOND"):
            create_record(h, "DEB", {"ZKSL": "DRIE", "BETCOND": 9})
        assert (
            create_record(h, "DEB", {"ZKSL": "VIER", "NAAM": "Vier", "KRLIM": Decimal("2500.75")}) == "10013"
        )
        update_record(h, "DEB", "NR", 10013, {"EMAIL": "vier@example.nl", "BLOK": True})
        update_record(h, "DEB", "NR", 10013, {"PLAATS": "Delft"})
        with pytest.raises(RecordValidationError):
            update_record(h, "DEB", "NR", 99999, {"PLAATS": "X"})
        update_record(h, "DEB", "NR", 10012, {"KRLIM": "12,5"})
        row = h.read_table("DEB", ["EMAIL", "BLOK", "PLAATS", "KRLIM"], where=[("NR", "=", 10013)]).iloc[0]
        assert (row["EMAIL"], row["BLOK"], row["PLAATS"], row["KRLIM"]) == (
            "vier@example.nl",
            True,
            "Delft",
            Decimal("2500.75"),
        )
        update_record(h, "DEB", "NR", 10006, {"EMAIL": "ok@example.nl"})  # its bad BETCOND is not touched
        with pytest.raises(RecordValidationError, match="BETCOND"):
            update_record(h, "DEB", "NR", 10006, {"BETCOND": 8})
        delete_record(h, "KPL", "NR", 400)
        with pytest.raises(RecordValidationError):
            delete_record(h, "KPL", "NR", 100)  # in use by debtors and items


# -- bookings --------------------------------------------------------------------------------------


def found(h, fact: str, year: int = 2026, **kwargs) -> list[str]:
    return [b.key for b in h.find_bookings(70, (year, year), fact=fact, **kwargs)]


def test_post_split_booking_with_pdf_find_and_attach(king):
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3 factuur 2026-0042\n"
    with hook() as h:
        posted = h.post_journal_entry(
            [
                boe(OPM="m-42"),
                boe(TEGREK=8010, BTW=2, BEDRBOEK=Decimal("200.00"), BEDRBTW=Decimal("18.00"), KPL=200),
            ],
            pdf=("2026-0042.pdf", pdf, "Factuur 2026-0042"),
        )
        key = posted.key
        assert key.startswith("70;2026;11;") and posted.fact == "2026-0042"
        assert found(h, "2026-0042") == [key]
        assert found(h, "2026-0043") == [] and found(h, "2026-0042", year=2025) == []
        (booking,) = h.find_bookings(70, (2026, 2027), marker="m-42")
        assert (booking.key, booking.debtor, booking.rows, booking.remark) == (key, 10000, 2, "m-42")
        assert (booking.net, booking.total) == (Decimal("300.00"), Decimal("339.00"))
        files = h.booking_files(key)
        assert [(f["FILENAME"], f["content"]) for f in files] == [("2026-0042.pdf", pdf)]
        h.attach_pdf(key, "bijlage.pdf", b"%PDF-2", "Urenstaat")
        assert [f["FILENAME"] for f in h.booking_files(key)] == ["2026-0042.pdf", "bijlage.pdf"]
        rows = h.read_table("BOE", "*", where=[("FACT", "=", "2026-0042")])
    assert list(rows["BEDRBOEK"]) == [Decimal("100.00"), Decimal("200.00")]
    assert rows["GRPROW"].nunique() == 1 and list(rows["REK"]) == [10000, 10000]
    assert rows["DATVERV"].iloc[0] == pd.Timestamp(2026, 12, 25)


def test_post_journal_entry_rejections_carry_the_reason(king):
    with hook() as h:
        with pytest.raises(RecordValidationError) as unknown_debtor:
            h.post_journal_entry(boe(REK=19999))
        assert unknown_debtor.value.key == "2026-0042" and "19999" in unknown_debtor.value.message
        with pytest.raises(RecordValidationError, match="btw"):
            h.post_journal_entry(boe(BEDRBTW=Decimal("20.00")))
        with pytest.raises(RecordValidationError):
            h.attach_pdf("70;2026;11;999", "x.pdf", b"%PDF")
    assert king.calls("king")["CreateJournaalpost"] == 2  # rejections are final: no retry


# -- faults ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "http_503", "count": 2},
        {"kind": "http_500", "count": 2},
        {"kind": "http_429", "count": 1, "retry_after": 0.1},
        {"kind": "latency", "count": 1, "latency_seconds": 1.5},
        {"kind": "expire_session", "count": 1},
    ],
)
def test_transient_faults_on_reads_are_survived(king, rule):
    king.faults("king", {**rule, "operations": ["GetStamtabelRecords"]})
    with hook(timeout=1) as h:
        assert len(h.read_table("DEB", ["NR"])) == 12


def test_persistent_faults_end_in_a_transient_error(king):
    king.faults("king", {"kind": "http_503", "operations": ["GetStamtabelRecords"]})
    with hook(max_attempts=3) as h, pytest.raises(TransientError):
        h.read_table("DEB", ["NR"])
    assert king.calls("king")["GetStamtabelRecords"] == 3


def test_a_malformed_request_fault_is_not_retried(king):
    with hook() as h:
        with pytest.raises(ProtocolError, match="did not recognize"):
            h.call("GetStamTabelRecords", [])
    assert king.calls("king")["GetStamTabelRecords"] == 1


def test_503_and_429_on_a_booking_are_retried(king):
    king.faults("king", {"kind": "http_503", "count": 1, "operations": ["CreateJournaalpost"]})
    with hook() as h:
        h.post_journal_entry(boe())
        king.faults(
            "king", {"kind": "http_429", "count": 1, "retry_after": 0.1, "operations": ["CreateJournaalpost"]}
        )
        h.post_journal_entry(boe(FACT="2026-0043"))
    assert len(king.state("king")["administrations"][0]["tables"]["BOE"]) == 2


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "drop_after_commit", "count": 1},
        {"kind": "latency", "count": 1, "latency_seconds": 1.5},
    ],
)
def test_a_lost_booking_answer_is_outcome_unknown_and_find_booking_resolves_it(king, rule):
    king.faults("king", {**rule, "operations": ["CreateJournaalpost"]})
    with hook(timeout=1) as h:
        with pytest.raises(OutcomeUnknownError):
            h.post_journal_entry(boe(), pdf=("f.pdf", b"%PDF"))
        time.sleep(0.6 if rule["kind"] == "latency" else 0)
        assert found(h, "2026-0042") != []
    assert king.calls("king")["CreateJournaalpost"] == 1  # never resent blindly


def test_an_expired_session_on_a_booking_posts_it_exactly_once(king):
    with hook() as h:
        h.get_adm_info()
        king.faults("king", {"kind": "expire_session", "count": 1, "operations": ["CreateJournaalpost"]})
        key = h.post_journal_entry(boe()).key
        assert found(h, "2026-0042") == [key]
    assert len(king.state("king")["administrations"][0]["tables"]["BOE"]) == 1
    assert king.calls("king")["Login"] == 2


def test_http_500_on_a_booking_is_outcome_unknown(king):
    king.faults("king", {"kind": "http_500", "count": 1, "operations": ["CreateJournaalpost"]})
    with hook() as h, pytest.raises(OutcomeUnknownError):
        h.post_journal_entry(boe())


def test_a_lost_create_record_answer_is_an_unknown_outcome(king):
    king.faults("king", {"kind": "drop_after_commit", "count": 1, "operations": ["CreateStamTabelRecord"]})
    with hook() as h:
        with pytest.raises(OutcomeUnknownError):
            create_record(h, "KPL", {"NR": 401, "ZKSL": "A"})  # committed, the answer lost
        assert create_record(h, "KPL", {"NR": 402, "ZKSL": "B"}) == "402"
        assert list(h.read_table("KPL", ["NR"], where=[("NR", ">=", 401)])["NR"]) == [401, 402]


# -- secrets ---------------------------------------------------------------------------------------


def test_no_secret_in_any_log_output(king, monkeypatch, caplog, capsys):
    connect(monkeypatch, king, environment_code="31337")
    caplog.set_level(logging.DEBUG)
    session_ids = []
    king.faults(
        "king",
        {"kind": "expire_session", "count": 1, "operations": ["GetStamtabelRecords"]},
        {"kind": "http_503", "count": 1, "operations": ["GetAdmInfo"]},
    )
    errors = []
    with hook() as h:
        h.read_table("DEB", "*")
        session_ids.append(h._session_id)
        h.get_adm_info()
        h.post_journal_entry(boe(), pdf=("f.pdf", b"%PDF"))
        session_ids.append(h._session_id)
        for bad in (lambda: h.post_journal_entry(boe(REK=1)), lambda: h.call("Nope", [])):
            try:
                bad()
            except Exception as exc:  # noqa: BLE001 - collect the messages
                errors.append(repr(exc))
    connect(monkeypatch, king, partner_key=KEY + "x", environment_code="31337")
    errors.append(hook().test_connection()[1])
    output = caplog.text + "".join(capsys.readouterr()) + "\n".join(errors)
    assert len(caplog.records) > 5 and all(session_ids)
    for secret in (KEY, "31337", *session_ids):
        assert secret not in output
