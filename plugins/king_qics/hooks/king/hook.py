"""KingFinanceHook: King Finance (iMUIS Online) Cloudswitch, ws1_xml.asmx flavour (SOAP).

- one Cloudswitch session per hook: Login on first use, KeepSession after a long idle spell, a new
  Login and one repeat of the call when King says the session ended, Logout on ``close()``/``with``;
- paged, typed table reads (GetStamtabelRecords) into pandas DataFrames, and GetAdmInfo
  (king.tables);
- sales bookings (CreateJournaalpost, one or more BOE rows = one split) with the invoice PDF as a
  ``DIGDOS`` table, ``attach_pdf`` (UpdateJournaalpost) and ``find_bookings`` for the exactly-once
  check (king.journal). The product never writes King master data.

Every dataset is built with lxml (king.soap); every answer is parsed without DTDs, entity
expansion or network access. Partner key, environment code and session ids are registered with
the secrets masker and never written into messages.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

from king_qics.errors import AuthenticationError, KingQicsError, ProtocolError, SessionExpiredError
from king_qics.hooks.base import ApiHook, mask
from king_qics.hooks.king.journal import Journal
from king_qics.hooks.king.profile import KingProfile
from king_qics.hooks.king.soap import client_fault, envelope, read_answer
from king_qics.hooks.king.tables import TableReads

log = logging.getLogger(__name__)


# Foutmelding texts that mean something to the hook. No catalogue of King's texts exists
# (research §2.4): these patterns are the one place to adjust once real answers are seen.
SESSION_EXPIRED_PATTERN = re.compile(
    r"sessie.*(verlopen|ongeldig|niet gevonden|bestaat niet)|session.*(expired|invalid|not found)|"
    r"niet ingelogd|not logged in",
    re.IGNORECASE,
)
# Any Login answering Result=false is a refusal; these texts mark other calls' refusals as auth.
AUTH_REFUSED_PATTERN = re.compile(
    r"partner ?key|omgevingscode|inloggen mislukt|login failed|geen toegang|access denied", re.IGNORECASE
)


class KingFinanceHook(TableReads, Journal, ApiHook):
    """Hook for King Finance Cloudswitch (``king_finance`` connections): the session and ``call``;
    table reads (king.tables) and journal entries (king.journal) are mixed in."""

    conn_name_attr = "king_conn_id"
    default_conn_name = "king_finance_default"
    conn_type = "king_finance"
    hook_name = "King Finance (Cloudswitch)"
    api_name = "king"

    default_page_size = 5000
    keepalive_after = 20 * 60.0  # seconds idle before a KeepSession (King ends sessions after 30 min)

    def __init__(
        self,
        king_conn_id: str = default_conn_name,
        *,
        page_size: int | None = None,
        keepalive_after: float | None = None,
        soap_version: str | None = None,
        **kwargs,
    ):
        super().__init__(king_conn_id, **kwargs)
        self.king_conn_id = king_conn_id
        self._page_size = page_size
        if keepalive_after is not None:
            self.keepalive_after = keepalive_after
        self._soap_version = soap_version
        self._session_id: str | None = None
        self._last_call = 0.0

    # -- connection ------------------------------------------------------------------------------

    @property
    def page_size(self) -> int:
        return self._setting(self._page_size, "page_size", self.default_page_size)

    @property
    def soap_version(self) -> str:
        return self._soap_version or self.profile.soap_version

    @cached_property
    def profile(self) -> KingProfile:
        """The wire profile of this connection (defaults, overridden by the connection's extras)."""
        return KingProfile.from_extras(self.connection.extra_dejson)

    @cached_property
    def credentials(self) -> tuple[str, str]:
        partner_key = self.extra("partner_key") or self.connection.password
        environment_code = self.extra("environment_code")
        mask(partner_key, environment_code)
        if not partner_key or environment_code in (None, ""):
            raise AuthenticationError(
                f"King connection {self.king_conn_id!r} needs a partner key and an environment code"
            )
        return str(partner_key), str(environment_code)

    def close(self) -> None:
        """Log out (best effort) and close the HTTP session."""
        if self._session_id is not None:
            try:
                self._soap("Logout", self._auth_params(), idempotent=True)
            except KingQicsError as exc:
                log.info("King Logout failed (%s); the session will time out by itself", type(exc).__name__)
            self._session_id = None
        super().close()

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.login()
            self.close()
        except Exception as exc:  # the UI shows the message
            return False, f"King Finance: {exc}"
        return True, "King Finance: logged in and out successfully"

    # -- SOAP transport --------------------------------------------------------------------------

    def is_transient_server_error(self, response) -> bool:
        """A SOAP Fault whose code says the request is wrong is final; every other 5xx may pass."""
        return client_fault(response.content) is None

    def _soap(
        self,
        operation: str,
        params: Sequence[tuple[str, Any]],
        *,
        idempotent: bool,
        before_attempt: Callable[[], None] | None = None,
    ) -> dict:
        """One SOAP call -> {"Result": bool, "Foutmelding": str, <output>: str | list[str]}."""
        data, headers = envelope(
            operation,
            params,
            soap_version=self.soap_version,
            dataset_encoding=self.profile.dataset_encoding,
        )
        response = self.send(
            operation,
            "POST",
            "",
            idempotent=idempotent,
            before_attempt=before_attempt,
            data=data,
            headers=headers,
        )
        self._last_call = time.monotonic()
        if response.status_code >= 500:
            reason = client_fault(response.content) or f"HTTP {response.status_code}"
            raise ProtocolError(f"King {operation}: the service refused the request: {reason}")
        if response.status_code != 200:
            raise ProtocolError(f"King {operation}: unexpected HTTP {response.status_code}")
        return read_answer(response.content, operation)

    # -- session ---------------------------------------------------------------------------------

    def _auth_params(self) -> list[tuple[str, Any]]:
        partner_key, environment_code = self.credentials
        return [
            ("PartnerKey", partner_key),
            ("Omgevingscode", environment_code),
            ("SessionId", self._session_id),
        ]

    def login(self) -> None:
        partner_key, environment_code = self.credentials
        answer = self._soap(
            "Login",
            [
                ("PartnerKey", partner_key),
                ("Omgevingscode", environment_code),
                ("SessionId", ""),
                ("Foutmelding", ""),
            ],
            idempotent=True,
        )
        session_id = str(answer.get("SessionId") or "").strip()
        if not answer["Result"] or not session_id:
            raise AuthenticationError(
                f"King refused the login of connection {self.king_conn_id!r}: "
                f"{answer['Foutmelding'] or 'no session id'}"
            )
        mask(session_id)
        self._session_id = session_id
        log.debug("King session opened for connection %s", self.king_conn_id)

    def _ensure_session(self) -> None:
        if self._session_id is None:
            self.login()
            return
        if time.monotonic() - self._last_call > self.keepalive_after:
            answer = self._soap("KeepSession", [*self._auth_params(), ("Foutmelding", "")], idempotent=True)
            if not answer["Result"]:
                self._session_id = None
                self.login()

    def call(
        self,
        operation: str,
        params: Sequence[tuple[str, Any]],
        *,
        idempotent: bool = True,
        before_attempt: Callable[[], None] | None = None,
    ) -> dict:
        """Call an operation inside the session; an ended session is renewed once, transparently.

        Returns the answer (see ``_soap``); a Result=false other than an ended session is returned
        for the caller to judge (its Foutmelding is King's reason). ``before_attempt`` runs before
        each attempt of the operation itself is sent (not before a Login).
        """
        for attempt in (1, 2):
            self._ensure_session()
            answer = self._soap(
                operation,
                [*self._auth_params(), *params, ("Foutmelding", "")],
                idempotent=idempotent,
                before_attempt=before_attempt,
            )
            if answer["Result"] or not SESSION_EXPIRED_PATTERN.search(answer["Foutmelding"]):
                if not answer["Result"] and AUTH_REFUSED_PATTERN.search(answer["Foutmelding"]):
                    raise AuthenticationError(f"King {operation}: {answer['Foutmelding']}")
                return answer
            log.info("King session ended (%s); logging in again (attempt %d)", operation, attempt)
            self._session_id = None
        raise SessionExpiredError(f"King {operation}: the session ended again right after a new login")
