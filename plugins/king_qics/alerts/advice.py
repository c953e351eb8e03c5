"""What to do, per kind of failure: the operations guide's troubleshooting rows (README
*Troubleshooting*) as the messages quote them."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Advice:
    symptom: str
    do: str


LOOKUP = Advice(
    "a record fails on a lookup",
    "The record names a code (payment condition, VAT code, cost centre, employee) that is not in Qics: "
    "correct the code in King, or add the missing record in King; it syncs first and the record "
    "follows in the same or the next run. To retry now, trigger the master-data DAG with the param "
    "keys naming the record.",
)
CLOSED_PERIOD = Advice(
    "a closed period",
    "The invoice's period is closed in King: book it by hand in King (or reopen the period), then "
    "trigger the invoice export with the param invoices naming it; the export adopts the booking.",
)
NUMBER_USED = Advice(
    "an invoice number already used in King",
    "King already holds a booking with this invoice number (FACT) that is not this invoice: check it "
    "in King and correct or remove the wrong booking there, then trigger the invoice export with the "
    "param invoices naming it. Never book it a second time by hand.",
)
QICS_REJECTED = Advice(
    "Qics rejects a record",
    "Qics refused the record for its own data (the reason names the field): fix it in King; the "
    "changed record is sent again by the next run (unchanged it is not sent again).",
)
KING_REFUSED = Advice(
    "King refuses a booking",
    "King refused the booking (the reason is King's): fix what it names in King (journal, account, "
    "debtor, VAT code) and trigger the invoice export with the param invoices naming the invoice.",
)
GENERIC_RECORD = Advice(
    "records or invoices fail",
    "The reason names what to fix (in King, or in Qics). Every following run retries; to retry now, "
    "trigger the DAG with the param keys (master data) or invoices (invoice export).",
)
API_DOWN = Advice(
    "a task failed after all its retries on an API fault",
    "King or Qics did not answer (timeouts, HTTP 5xx or 429) through every retry: check the service; "
    "once it answers, clear the task (or wait for the next run: the sync resumes where it stopped).",
)

_PATTERNS = (
    (
        re.compile(r"is not synced to Qics yet|does not exist in King|exists in King, but its own sync"),
        LOOKUP,
    ),
    (re.compile(r"period \d+/\d+ (is|was) closed"), CLOSED_PERIOD),
    (re.compile(r"King has FACT|bookings? (of|matching) this invoice"), NUMBER_USED),
    (re.compile(r"King refused the booking"), KING_REFUSED),
    (re.compile(r"HTTP 4\d\d|rejected|refused"), QICS_REJECTED),
)


def for_reason(reason: str) -> Advice:
    for pattern, advice in _PATTERNS:
        if pattern.search(reason or ""):
            return advice
    return GENERIC_RECORD


def qics_reauthorize(conn_id: str, host: str | None, client_id: str | None) -> str:
    """The re-authorization of a broken Qics token chain (the authorization-code flow, the only one
    QicsMilestones supports: https://qicsmilestones.qics.nl/api/oauth2)."""
    base = (host or "https://qicsmilestones.qics.nl").rstrip("/")
    client = client_id or f"<client_id of connection {conn_id}>"
    return (
        "The Qics token chain is broken (the refresh token was revoked, expired or already used): a person "
        "must re-authorize the sync's client application in QicsMilestones.\n"
        f"1. Open {base}/api/oauth2/oauth2/auth?response_type=code&client_id={client}"
        "&redirect_uri=<the Redirect Uri registered for the application>, log in as the QicsMilestones "
        "user the sync works as, and allow access.\n"
        "2. Qics sends the browser to the Redirect Uri with ?code=...; exchange that one-time code at once: "
        f"POST {base}/api/oauth2/oauth2/token with grant_type=authorization_code, the code, the same "
        "redirect_uri, client_id and client_secret. The answer holds a new refresh_token.\n"
        '3. Give that refresh token to the sync: in the form "Re-authorize Qics" of the administration\'s '
        "King <-> Qics page (it is spent at once for a new token chain and kept nowhere in clear), or in the "
        f"extra refresh_token of connection {conn_id} (Admin -> Connections), from which the chain "
        "restarts. Then clear the failed tasks, or wait for the next run."
    )


def king_refused(conn_id: str, reason: str = "") -> str:
    """The step for what King refused: its Foutmelding names the partner key or the environment code
    (docs/sandboxes.md row 12: King's texts are not catalogued, so both are named otherwise)."""
    text = reason.lower()
    partner = (
        f"the partner key of connection {conn_id} (its extra partner_key) is the one King Finance issued "
        "to this integration; a partner key may be allowed only from known IP addresses (a hint in public "
        "client code, docs/research_evidence.md): ask King's partner support to allow the workers' "
        "outbound address"
    )
    environment = (
        f"the environment code of connection {conn_id} (its extra environment_code) is that of this "
        "administration's King Finance (Cloudswitch) environment, as its owner gives it"
    )
    if "partner" in text and "omgeving" not in text and "environment" not in text:
        steps = [f"King refused the partner key: check that {partner}."]
    elif ("omgeving" in text or "environment" in text) and "partner" not in text:
        steps = [f"King refused the environment code: check that {environment}."]
    else:
        steps = [
            f"King refused the partner key or the environment code: check that {partner}, and that "
            f"{environment}."
        ]
    steps.append(
        f"Correct connection {conn_id} (Admin -> Connections), run the preflight (king_qics__preflight) "
        "and clear the failed tasks."
    )
    return "\n".join(steps)


def qics_refused(conn_id: str) -> str:
    return (
        f"QicsMilestones refused the client or the user of connection {conn_id} (client id or secret, "
        "API key, or the authorizing user lacks a right): correct the connection (Admin -> Connections) "
        "or the user's rights in QicsMilestones, run the preflight (king_qics__preflight) and clear the "
        "failed tasks."
    )
