"""QicsMilestonesHook: authorized requests (OAuth2, qics.oauth), paged OData reads; its writes
(qics.writes) and invoice side (qics.invoices) are mixed in.

Every request goes through :meth:`ApiHook.send` (timeouts, retries, counters). Values are typed as
king_qics.hooks.qics.odata describes; every guess about the real wire (literal styles, the
invoice-line set, the PDF route, client authentication, an API key, the page size) is read from the
connection's wire profile (:attr:`QicsMilestonesHook.profile`, king_qics.hooks.qics.profile).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import requests

from king_qics.errors import (
    AuthenticationError,
    ConfigurationError,
    KingQicsError,
    ProtocolError,
    RecordValidationError,
)
from king_qics.hooks.base import ApiHook, mask
from king_qics.hooks.qics.invoices import QicsInvoices
from king_qics.hooks.qics.oauth import OAuthTokens, TokenStore
from king_qics.hooks.qics.odata import (
    ODATA_ROOT,
    ODataFilter,
    error_message,
    key,
    odata_filter,
    typed,
)
from king_qics.hooks.qics.profile import QicsProfile
from king_qics.hooks.qics.writes import QicsWrites

log = logging.getLogger(__name__)

NEXT_LINKS = ("@odata.nextLink", "odata.nextLink")  # OData v4 JSON, v3 JSON


class QicsMilestonesHook(QicsWrites, QicsInvoices, ApiHook):
    """Access to QicsMilestones REST v3 (OData) with an OAuth2 refresh token."""

    conn_name_attr = "qics_conn_id"
    default_conn_name = "qics_default"
    conn_type = "qics_milestones"
    hook_name = "QicsMilestones (REST v3)"
    api_name = "qics"
    default_max_pages = 100_000
    lines_per_request = 25

    def __init__(
        self,
        qics_conn_id: str = default_conn_name,
        *,
        token_store: TokenStore | None = None,
        max_pages: int | None = None,
        **kwargs,
    ):
        super().__init__(qics_conn_id, **kwargs)
        self.qics_conn_id = qics_conn_id
        self.token_store = token_store  # where the rotating refresh token is kept (qics.oauth)
        self.max_pages = max_pages or self.default_max_pages

    # -- connection ------------------------------------------------------------------------------

    @cached_property
    def profile(self) -> QicsProfile:
        """The wire profile of this connection (defaults, overridden by the connection's extras)."""
        return QicsProfile.from_extras(self.connection.extra_dejson)

    @cached_property
    def tokens(self) -> OAuthTokens:
        """The connection's token chain. Needs the ``token_store`` (a task passes the state store's,
        ``StateStore.tokens``): a single-use refresh token refreshed without one is lost."""
        if self.token_store is None:
            raise ConfigurationError(
                f"QicsMilestonesHook({self.conn_id!r}) needs a token_store to keep the rotating refresh"
                " token in (e.g. token_store=StateStore.from_settings().tokens)"
            )
        return self._oauth(self.token_store)

    def _oauth(self, store: TokenStore | None) -> OAuthTokens:
        return OAuthTokens(
            self,
            store,
            client_id=self.extra("client_id"),
            client_secret=self.extra("client_secret"),
            refresh_token=self.extra("refresh_token"),
            client_auth=self.profile.oauth_client_auth,
        )

    @cached_property
    def company_id(self) -> int | None:
        value = self.extra("company_id")
        return int(value) if value not in (None, "") else None

    @cached_property
    def service_headers(self) -> dict[str, str]:
        """Headers every request carries besides authorization: the API key, when the profile has one."""
        header, api_key = self.profile.api_key_header, self.extra("api_key")
        mask(api_key)
        if header and not api_key:
            raise AuthenticationError(
                f"Connection {self.conn_id!r} names an API key header ({header}) but has no api_key extra"
            )
        if api_key and not header:
            raise AuthenticationError(
                f"Connection {self.conn_id!r} has an api_key but no api_key_header to send it in"
            )
        return {header: str(api_key)} if header else {}

    # -- transport -------------------------------------------------------------------------------

    def request(
        self, operation: str, method: str, endpoint: str, *, idempotent: bool, **kwargs: Any
    ) -> requests.Response:
        """One authorized request; on HTTP 401 the access token is renewed once and the call repeated
        (a 401 means the request was not processed, so repeating a write is safe)."""
        headers = {"Accept": "application/json", **self.service_headers, **kwargs.pop("headers", {})}
        token = self.tokens.access_token()
        for attempt in (1, 2):
            response = self.send(
                operation,
                method,
                endpoint,
                idempotent=idempotent,
                headers={**headers, "Authorization": f"Bearer {token}"},
                **kwargs,
            )
            if response.status_code != 401:
                return response
            if attempt == 1:
                log.info("qics %s: access token refused (HTTP 401); renewing it once", operation)
                token = self.tokens.renew(token)
        raise AuthenticationError(
            f"qics {operation}: HTTP 401 even with a freshly renewed access token (connection"
            f" {self.conn_id!r}); the authorizing QicsMilestones user may lack access."
        )

    def _check(self, response: requests.Response, operation: str, key: Any = None) -> None:
        status = response.status_code
        if status < 400:
            return
        message = error_message(response)
        if status in (400, 409, 422):
            raise RecordValidationError(key, message)
        if status == 403:
            raise AuthenticationError(
                f"qics {operation}: HTTP 403 forbidden ({message}); the authorizing QicsMilestones user lacks"
                " the right for this operation or company."
            )
        if status == 404:
            raise RecordValidationError(key, f"not found: {message}")
        raise ProtocolError(f"qics {operation}: unexpected HTTP {status}: {message}")

    def _json(self, response: requests.Response, operation: str) -> Any:
        content_type = response.headers.get("Content-Type", "")
        try:
            return response.json()
        except ValueError:
            kind = (
                "an HTML page" if "html" in content_type or response.text.lstrip()[:1] == "<" else "no JSON"
            )
            raise ProtocolError(
                f"qics {operation}: expected JSON but got {kind} (HTTP {response.status_code},"
                f" Content-Type {content_type or 'none'})"
            ) from None

    def _entity_json(self, response: requests.Response, operation: str) -> dict:
        body = self._json(response, operation)
        if not isinstance(body, dict):
            raise ProtocolError(f"qics {operation}: expected a JSON object")
        return typed(body)

    # -- reads ------------------------------------------------------------------------------------

    def filter_text(self, filter: str | ODataFilter | None) -> str | None:  # noqa: A002 - the OData name
        """A $filter as this connection sends it (an ODataFilter rendered with this profile)."""
        if isinstance(filter, ODataFilter):
            return filter.render(self.profile) if filter else None
        return filter or None

    def iter_records(
        self,
        entity: str,
        filter: str | ODataFilter | None = None,  # noqa: A002 - the OData name
        select: Sequence[str] | None = None,
        top: int | None = None,
        orderby: str | None = None,
    ) -> Iterator[dict]:
        """Every record of an entity set matching the query, page by page: ``@odata.nextLink`` (v4)
        or ``odata.nextLink`` (v3). A page as full as the profile's ``server_page_size`` without a
        next link is checked with a ``$skip`` past it: more records there is a ProtocolError (the
        service cut the result without saying so), never a silent stop."""
        params: dict[str, Any] = {}
        filter_text = self.filter_text(filter)
        if filter_text:
            params["$filter"] = filter_text
        if select:
            params["$select"] = ",".join(select)
        if top is not None:
            params["$top"] = int(top)
        if orderby:
            params["$orderby"] = orderby
        operation = f"GET {entity}"
        endpoint, query, seen, received = f"{ODATA_ROOT}/{entity}", dict(params), set(), 0
        for _page in range(self.max_pages):
            page = self._page(operation, endpoint, query)
            for record in page["value"]:
                yield typed(record)
            received += len(page["value"])
            next_link = next((page[name] for name in NEXT_LINKS if page.get(name)), None)
            if not next_link:
                if self._looks_cut(len(page["value"]), received, top):
                    self._probe_past(operation, f"{ODATA_ROOT}/{entity}", params, received, top)
                return
            if next_link in seen:
                raise ProtocolError(f"qics {operation}: the service repeated a nextLink; stopping")
            seen.add(next_link)
            endpoint, query = self._relative(next_link, operation), {}
        raise ProtocolError(f"qics {operation}: more than {self.max_pages} pages; stopping (paging loop?)")

    def first_page(self, entity: str, filter: str | ODataFilter | None = None) -> tuple[int, str | None]:  # noqa: A002
        """How the service pages a read without $top: the records on its first page, and the name of
        the next link it sent (None: none). For the preflight's check of server_page_size."""
        params = {"$filter": self.filter_text(filter)} if filter else {}
        page = self._page(f"GET {entity}", f"{ODATA_ROOT}/{entity}", params)
        return len(page["value"]), next((name for name in NEXT_LINKS if page.get(name)), None)

    def _page(self, operation: str, endpoint: str, params: dict) -> dict:
        response = self.request(operation, "GET", endpoint, idempotent=True, params=params)
        self._check_read(response, operation)
        body = self._json(response, operation)
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            raise ProtocolError(f"qics {operation}: expected an OData collection with 'value'")
        return body

    def _looks_cut(self, on_page: int, received: int, top: int | None) -> bool:
        size = self.profile.server_page_size
        if top is not None and received >= top:
            return False  # we asked for exactly this many
        return bool(size) and on_page >= size

    def _probe_past(self, operation: str, endpoint: str, params: dict, received: int, top: int | None):
        """The last page was full and had no next link: look past it once."""
        probe = {**params, "$skip": received}
        if top is not None:
            probe["$top"] = int(top) - received
        rest = self._page(operation, endpoint, probe)["value"]
        if rest:
            raise ProtocolError(
                f"qics {operation}: a page of {self.profile.server_page_size} or more records came without a"
                f" next link, but $skip={received} finds more: the service pages in a way this hook does not"
                " follow, or cuts results silently. Check the profile's server_page_size against the service."
            )

    def _check_read(self, response: requests.Response, operation: str) -> None:
        if response.status_code == 404:
            raise ProtocolError(
                f"qics {operation}: HTTP 404 ({error_message(response)}): unknown entity set?"
            )
        if response.status_code == 400:
            raise ProtocolError(f"qics {operation}: query rejected: {error_message(response)}")
        self._check(response, operation)

    def _relative(self, link: str, operation: str) -> str:
        """A nextLink as an endpoint on our host (never send the token to another host)."""
        base, target = urlsplit(self.url("")), urlsplit(link)
        if target.scheme or target.netloc:
            if (target.scheme, target.netloc.lower()) != (base.scheme, base.netloc.lower()):
                raise ProtocolError(f"qics {operation}: nextLink points to another host; refusing to follow")
        path = target.path if target.path.startswith("/") else f"{ODATA_ROOT}/{target.path}"
        return f"{path}?{target.query}" if target.query else path

    def get(self, entity: str, id: Any) -> dict | None:  # noqa: A002
        """One record by its numeric id, or None when it does not exist."""
        record_key = key(id)
        operation = f"GET {entity}(key)"
        response = self.request(operation, "GET", f"{ODATA_ROOT}/{entity}({record_key})", idempotent=True)
        if response.status_code == 404:
            return None
        self._check(response, operation, record_key)
        return self._entity_json(response, operation)

    def find(self, entity: str, natural_key: dict) -> dict | None:
        """The one record whose fields equal ``natural_key`` (None if none; error if several)."""
        found = list(self.iter_records(entity, filter=odata_filter(natural_key)))
        if len(found) > 1:
            raise ProtocolError(f"qics: {len(found)} {entity} records match {natural_key}; expected one")
        return found[0] if found else None

    def test_connection(self) -> tuple[bool, str]:
        """With a token store: obtain an access token and read the Company entity set. Without one
        (Airflow's Test button builds the hook bare): only whether the token endpoint accepts the
        client, since refreshing would burn the single-use refresh token of the sync's chain."""
        try:
            if self.token_store is None:
                return True, self._oauth(None).check_client()
            companies = list(self.iter_records("Company", select=["CompanyId", "Name"]))
        except KingQicsError as exc:
            return False, str(exc)
        except Exception as exc:  # noqa: BLE001 - the UI button shows any failure
            return False, f"{type(exc).__name__}: {exc}"
        names = ", ".join(f"{c['CompanyId']} {c.get('Name')}" for c in companies[:5])
        if self.company_id is not None and all(c["CompanyId"] != self.company_id for c in companies):
            return (
                False,
                f"Connected, but company {self.company_id} is not visible (visible: {names or 'none'})",
            )
        return True, f"Connected to QicsMilestones; {len(companies)} companies visible ({names})"
