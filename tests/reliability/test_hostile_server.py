"""A misbehaving server: the sandboxes' ``raw_response`` fault answers with a given body instead of
handling the request. King answers carrying a DTD (XXE, billion laughs) or of unbounded size are
refused without resolving anything and without the worker's memory growing; Qics answers that are
not JSON (broken JSON, an HTML page with 200 or a proxy's 502) give typed errors with clear text."""

from __future__ import annotations

import resource
import time
from xml.sax.saxutils import escape

import pytest

from king_qics.errors import KingQicsError, ProtocolError, TransientError
from king_qics.hooks.king import KingFinanceHook
from king_qics.hooks.qics import QicsMilestonesHook

NS = "https://cloudswitch.imuisonline.com/"
SECRET_FILE = "/etc/passwd"  # any readable local file: its content must never come back
pytestmark = pytest.mark.reliability


def envelope(operation: str, inner: str, prolog: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{prolog}'
        '<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>'
        f'<{operation}Response xmlns="{NS}"><{operation}Result>true</{operation}Result>{inner}'
        f"</{operation}Response></soap:Body></soap:Envelope>"
    )


XXE_DTD = f'<!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{SECRET_FILE}">]>'
LAUGHS_DTD = (
    '<!DOCTYPE r [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    + "]>"
)
RECORDS_XXE = escape(f'<?xml version="1.0"?>{XXE_DTD}<NewDataSet><DATA><NR>&xxe;</NR></DATA></NewDataSet>')

KING_CASES = {
    "xxe_in_envelope": ("Login", envelope("Login", "<SessionId>&xxe;</SessionId>", XXE_DTD)),
    "billion_laughs_in_envelope": ("Login", envelope("Login", "<SessionId>&lol9;</SessionId>", LAUGHS_DTD)),
    "xxe_in_records_dataset": (
        "GetStamtabelRecords",
        envelope("GetStamtabelRecords", f"<Records>{RECORDS_XXE}</Records>"),
    ),
    "billion_laughs_in_records_dataset": (
        "GetStamtabelRecords",
        envelope(
            "GetStamtabelRecords",
            "<Records>"
            + escape(f"{LAUGHS_DTD}<NewDataSet><DATA><NR>&lol9;</NR></DATA></NewDataSet>")
            + "</Records>",
        ),
    ),
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def king_read(sandbox) -> None:
    with KingFinanceHook("king_noord", max_attempts=1) as king:
        king.read_table("BTW", ["NR"])


@pytest.mark.parametrize("case", sorted(KING_CASES))
def test_king_answers_with_a_dtd_are_refused(case, connections, figures):
    operation, body = KING_CASES[case]
    connections.faults("king", {"kind": "raw_response", "operations": [operation], "body": body})
    passwd = open(SECRET_FILE).read().splitlines()[0]
    rss, started = peak_rss_mb(), time.monotonic()
    with pytest.raises(ProtocolError) as caught:
        king_read(connections)
    seconds = time.monotonic() - started
    # refused before any entity is resolved: the DTD itself, or libxml2's amplification guard
    assert ("DTD" in str(caught.value) or "entity amplification" in str(caught.value)) and operation in str(
        caught.value
    )
    assert passwd not in repr(caught.value) and "lollol" not in str(caught.value)
    assert peak_rss_mb() - rss < 20 and seconds < 5
    figures(f"hostile_server_king_{case}", {"error": str(caught.value), "rss_growth_mb": peak_rss_mb() - rss})


@pytest.mark.parametrize(
    "case, body, repeat",
    [
        ("huge_answer_512_mib", "<x>" + "A" * (2**20 - 7) + "</x>\n", 512),  # streamed, never complete
        ("huge_text_node_20_mib", envelope("Login", "<SessionId>" + "A" * 20 * 2**20 + "</SessionId>"), 1),
    ],
)
def test_king_huge_answers_are_refused_without_memory_blowup(case, body, repeat, connections, figures):
    connections.faults(
        "king", {"kind": "raw_response", "operations": ["Login"], "body": body, "repeat": repeat}
    )
    rss, started = peak_rss_mb(), time.monotonic()
    with pytest.raises(ProtocolError) as caught:
        king_read(connections)
    growth = peak_rss_mb() - rss
    assert "King" in str(caught.value) or "king" in str(caught.value)
    assert len(str(caught.value)) < 300  # the body is not copied into the message
    assert growth < 200, f"peak RSS grew by {growth:.0f} MiB"
    figures(
        f"hostile_server_king_{case}",
        {
            "error": str(caught.value),
            "rss_growth_mb": round(growth, 1),
            "seconds": time.monotonic() - started,
        },
    )


QICS_CASES = [  # case, status, body, content type, expected error type, expected text
    ("broken_json", 200, '{"value": [{"VatCodeId": "1",', "application/json", ProtocolError, "expected JSON"),
    (
        "html_page_with_200",
        200,
        "<html><body>Login</body></html>",
        "text/html",
        ProtocolError,
        "an HTML page",
    ),
    ("proxy_502_html", 502, "<html><h1>502 Bad Gateway</h1></html>", "text/html", TransientError, "HTTP 502"),
    ("json_not_a_collection", 200, "[1, 2, 3]", "application/json", ProtocolError, "OData collection"),
]


@pytest.mark.parametrize(
    "case, status, body, content_type, error, text", QICS_CASES, ids=[c[0] for c in QICS_CASES]
)
def test_qics_answers_that_are_not_json_give_clear_errors(
    case, status, body, content_type, error, text, connections, state_store, figures
):
    connections.faults(
        "qics",
        {
            "kind": "raw_response",
            "operations": ["GET VatCode"],
            "status": status,
            "body": body,
            "content_type": content_type,
        },
    )
    qics = QicsMilestonesHook(
        "qics_sandbox", token_store=state_store.tokens, max_attempts=2, backoff_initial=0.01
    )
    try:
        with pytest.raises(KingQicsError) as caught:
            list(qics.iter_records("VatCode"))
    finally:
        qics.close()
    assert isinstance(caught.value, error), repr(caught.value)
    assert text in str(caught.value) and "GET VatCode" in str(caught.value)
    assert "<html" not in str(caught.value)  # a readable message, not the page
    figures(
        f"hostile_server_qics_{case}", {"error_type": type(caught.value).__name__, "error": str(caught.value)}
    )
