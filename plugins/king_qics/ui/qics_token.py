"""Re-authorization without shell access: a refresh token a person got from QicsMilestones starts a
new token chain of an administration's Qics connection, straight from the King <-> Qics page.

The token goes from the page's form (a JSON POST, like the page's trigger form) to this process and
into the state store's token chain, encrypted, and is spent at once: it never becomes a DAG run's
param (Airflow keeps those in its metadata database), an XCom, a log line or an answer. Only a user
whom Airflow's auth manager allows to edit that connection may do it.
"""

from __future__ import annotations

import logging
from typing import Any

from king_qics.errors import AuthenticationError, ProtocolError, TransientError

log = logging.getLogger(__name__)


def sharing(adm, administrations) -> list[str]:
    """The administrations that use ``adm``'s Qics connection (one chain for all of them)."""
    return sorted(a.id for a in administrations if a.qics_conn_id == adm.qics_conn_id)


class RefusedToken(Exception):
    """Qics did not accept the token, or the new chain could not be used (a message for the person)."""


def start_token_chain(adm, administrations, store, refresh_token: str) -> dict[str, Any]:
    """Spend ``refresh_token`` for a new chain of ``adm``'s Qics connection, then read the
    administration's Qics company with it. Returns who shares the connection and until when the
    access token is valid; never the token."""
    from king_qics.hooks.base import mask
    from king_qics.hooks.qics import QicsMilestonesHook, odata_filter

    refresh_token = str(refresh_token or "").strip()
    if not refresh_token:
        raise RefusedToken("no refresh token given")
    mask(refresh_token)  # before anything else can log it
    try:
        with QicsMilestonesHook(adm.qics_conn_id, token_store=store.tokens) as qics:
            grant = qics.tokens.start_chain(refresh_token)
            company = odata_filter({"CompanyId": adm.company_id})
            found = next(iter(qics.iter_records("Company", filter=company, top=1)), None)
    except (AuthenticationError, ProtocolError, TransientError) as exc:
        raise RefusedToken(str(exc).replace(refresh_token, "***")) from None
    users = sharing(adm, administrations)
    log.info(
        "Qics connection %s (administrations %s) has a new token chain, started from the King <-> Qics page",
        adm.qics_conn_id,
        ", ".join(users),
    )
    return {
        "connection": adm.qics_conn_id,
        "administrations": users,
        "access_valid_until": grant.expires_at.isoformat(),
        "company_found": found is not None,
    }
