"""OAuth2 refresh-token handling for QicsMilestones, safe across tasks, processes and workers.

QicsMilestones issues a refresh token once (authorization-code flow). The sandbox, and this code,
assume the token is single-use and rotates: every refresh returns a new refresh token and burns
the old one. So:
- the current refresh token and the cached access token live in a TokenStore (the state
  package's ``oauth_tokens`` table implements it: king_qics.state.tokens), encrypted with a Fernet
  key derived (HKDF-SHA256) from the client secret, so the store never sees a token in clear;
- one process at a time refreshes: it claims the refresh in a short transaction (a claim older than
  twice the hook's worst-case call is taken over), calls Qics holding no database lock, and stores
  the new tokens; the others poll the stored row until the new access token is there;
- the chain remembers (as a keyed fingerprint) which connection refresh token it grew from: when
  the connection holds a different one (the user re-authorized), the chain restarts from it.
The client authenticates at the token endpoint as the wire profile's ``oauth_client_auth`` says
(form fields or HTTP Basic), with the profile's API-key header when it has one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote_plus

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from king_qics.errors import AuthenticationError, ProtocolError, TransientError
from king_qics.hooks.base import mask

if TYPE_CHECKING:
    from king_qics.hooks.qics import QicsMilestonesHook

log = logging.getLogger(__name__)

TOKEN_ENDPOINT = "/api/oauth2/oauth2/token"
EXPIRY_LEEWAY_SECONDS = 60
REFRESH_POLL_SECONDS = 0.2  # how often a waiting process looks whether the refresh is done

_PROCESS_CACHE: dict[tuple, tuple[str, datetime]] = {}
_PROCESS_CACHE_LOCK = threading.Lock()


class StoredTokens(Protocol):
    """A connection's stored chain (both tokens encrypted)."""

    seed_fingerprint: str | None
    refresh_token: str | None
    access_token: str | None
    access_expires_at: datetime | None


class TokenStore(Protocol):
    """Where the token chains are kept, shared by every process that syncs (a database)."""

    key: str  # identifies the store: access tokens cached in a process are cached per store

    def load(self, conn_id: str) -> StoredTokens | None: ...

    def claim_refresh(self, conn_id: str, fingerprint: str, holder: str, lease: timedelta) -> bool:
        """Atomically take the right to refresh (none under way, or one older than ``lease``)."""

    def save(
        self,
        conn_id: str,
        *,
        seed_fingerprint: str,
        refresh_token: str,
        access_token: str,
        access_expires_at: datetime,
    ) -> None:
        """Store the new chain and end the refresh."""

    def release_refresh(self, conn_id: str, holder: str) -> None:
        """End a refresh that failed (the next process may try)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _derive(secret: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"king-qics-sync/oauth", info=info).derive(
        secret.encode()
    )


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass
class Grant:
    """One answer of the token endpoint, as the hook keeps it."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime
    rotated: bool  # a new refresh token came back (single-use tokens, as assumed), else the same one
    expires_in: float | None  # the lifetime the service stated (None: it stated none, 3600 s assumed)


class OAuthTokens:
    """Access tokens for one Qics connection (see module docstring)."""

    def __init__(
        self,
        hook: QicsMilestonesHook,
        store: TokenStore | None,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        client_auth: str = "body",
    ):
        if client_auth not in ("body", "basic"):
            raise ValueError(f"oauth_client_auth must be 'body' or 'basic', not {client_auth!r}")
        missing = [
            n
            for n, v in (
                ("client_id", client_id),
                ("client_secret", client_secret),
                ("refresh_token", refresh_token),
            )
            if not v
        ]
        if missing:
            raise AuthenticationError(
                f"Connection {hook.conn_id!r} lacks {', '.join(missing)}: authorize the OAuth application"
                " in QicsMilestones and fill in the connection's extras."
            )
        mask(client_secret, refresh_token)
        self.hook, self.store = hook, store
        self.conn_id = hook.conn_id
        self.client_auth = client_auth
        self.client_id, self._client_secret, self._seed = (
            str(client_id),
            str(client_secret),
            str(refresh_token),
        )
        self._fernet = Fernet(
            base64.urlsafe_b64encode(_derive(self._client_secret, b"fernet:" + self.conn_id.encode()))
        )
        self.fingerprint = hmac.new(
            _derive(self._client_secret, b"fingerprint"),
            f"{self.client_id}\n{self._seed}".encode(),
            hashlib.sha256,
        ).hexdigest()
        self._cache_key = (store.key if store is not None else "", self.conn_id, self.fingerprint)
        self.last_grant: Grant | None = None  # this object's last refresh (the preflight reports it)

    # -- public ------------------------------------------------------------------------------------

    def access_token(self) -> str:
        """A valid access token: from this process, else the state store, else a refresh."""
        with _PROCESS_CACHE_LOCK:
            cached = _PROCESS_CACHE.get(self._cache_key)
        if cached and cached[1] > utcnow():
            return cached[0]
        token = self._usable_access(self.store.load(self.conn_id), rejected=None)
        if token:
            return token
        return self._refresh(rejected=None)

    def check_client(self) -> str:
        """Whether the token endpoint accepts this client, without spending the refresh token: a
        refresh with a token that cannot exist is refused as invalid_grant once the client is
        accepted (invalid_client otherwise, raised as AuthenticationError)."""
        try:
            self._grant("king-qics-sync-connection-test", from_chain=False)
        except AuthenticationError as exc:
            if "invalid_grant" not in str(exc):
                raise
            return "QicsMilestones accepts the client (the refresh token was not used: it is single-use)"
        raise ProtocolError("qics POST token: a refresh token that cannot exist was accepted")

    def start_chain(self, refresh_token: str) -> Grant:
        """A new chain from a refresh token a person got by re-authorizing the OAuth application in
        Qics (the King <-> Qics page's re-authorization form): spent at once for an access token and
        its successor, both stored encrypted; the connection itself is not changed (its token stays
        the seed the chain is known by). Refused (AuthenticationError) when Qics does not accept the
        token; the old chain is then left as it was."""
        refresh_token = str(refresh_token or "").strip()
        if not refresh_token:
            raise AuthenticationError("no refresh token given")
        mask(refresh_token)
        me, lease = uuid.uuid4().hex, self._lease()
        waited_until = time.monotonic() + lease.total_seconds()
        while not self.store.claim_refresh(self.conn_id, self.fingerprint, me, lease):
            if time.monotonic() > waited_until:
                raise self._refreshing_too_long()
            time.sleep(REFRESH_POLL_SECONDS)
        grant = self._exchange(me, refresh_token, from_chain=False, source="the refresh token given")
        log.info("qics: connection %s has a new token chain (from a refresh token given)", self.conn_id)
        return grant

    def renew(self, rejected: str) -> str:
        """The service refused ``rejected`` (HTTP 401): get another access token."""
        with _PROCESS_CACHE_LOCK:
            if _PROCESS_CACHE.get(self._cache_key, ("",))[0] == rejected:
                del _PROCESS_CACHE[self._cache_key]
        return self._refresh(rejected=rejected)

    # -- internals ---------------------------------------------------------------------------------

    def _how_sent(self) -> str:
        how = "by HTTP Basic" if self.client_auth == "basic" else "in the request body"
        header = self.hook.profile.api_key_header
        return how + (f", API key in {header}" if header else ", no API key")

    def _decrypt(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return self._fernet.decrypt(value.encode()).decode()
        except InvalidToken:
            return None  # written under another client secret: treat as absent

    def _encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def _usable_access(self, row, rejected: str | None) -> str | None:
        if row is None or row.seed_fingerprint != self.fingerprint:
            return None
        access, expires_at = self._decrypt(row.access_token), _aware(row.access_expires_at)
        if not access or access == rejected or expires_at is None or expires_at <= utcnow():
            return None
        mask(access)
        self._remember(access, expires_at)
        return access

    def _remember(self, access: str, expires_at: datetime) -> None:
        with _PROCESS_CACHE_LOCK:
            _PROCESS_CACHE[self._cache_key] = (access, expires_at)

    def _lease(self) -> timedelta:
        """How long a refresh claim holds (twice the hook's worst-case call): an older claim is
        taken over, and a process waits no longer than this for another's refresh."""
        return timedelta(seconds=2 * self.hook.worst_case_seconds())

    def _refreshing_too_long(self) -> TransientError:
        return TransientError(
            f"qics: another process has been refreshing connection {self.conn_id!r} too long"
        )

    def _refresh(self, rejected: str | None) -> str:
        """Refresh once across every process: the first to claim the refresh calls Qics (holding no
        database lock meanwhile), the others wait for its result."""
        me, lease = uuid.uuid4().hex, self._lease()
        waited_until = time.monotonic() + lease.total_seconds()
        while True:
            token = self._usable_access(self.store.load(self.conn_id), rejected)
            if token:  # another task or worker refreshed while we waited
                return token
            if self.store.claim_refresh(self.conn_id, self.fingerprint, me, lease):
                # read again after the claim: the chain as the last refresh left it, never older
                row = self.store.load(self.conn_id)
                token = self._usable_access(row, rejected)
                if token:
                    self.store.release_refresh(self.conn_id, me)
                    return token
                break
            if time.monotonic() > waited_until:
                raise self._refreshing_too_long()
            time.sleep(REFRESH_POLL_SECONDS)
        refresh_token, from_chain = self._seed, False
        if row is not None and row.seed_fingerprint == self.fingerprint:
            stored = self._decrypt(row.refresh_token)
            if stored:
                refresh_token, from_chain = stored, True
        grant = self._exchange(me, refresh_token, from_chain)
        log.info("qics: refreshed the OAuth access token of connection %s", self.conn_id)
        return grant.access_token

    def _exchange(self, me: str, refresh_token: str, from_chain: bool, **grant_options) -> Grant:
        """Exchange ``refresh_token`` under the refresh claim ``me`` holds and store the new chain
        (which ends the claim); a failed exchange releases the claim."""
        try:
            grant = self._grant(refresh_token, from_chain, **grant_options)
        except BaseException:
            self.store.release_refresh(self.conn_id, me)
            raise
        self.store.save(
            self.conn_id,
            seed_fingerprint=self.fingerprint,
            refresh_token=self._encrypt(grant.refresh_token),
            access_token=self._encrypt(grant.access_token),
            access_expires_at=grant.expires_at,
        )
        self._remember(grant.access_token, grant.expires_at)
        self.last_grant = grant
        return grant

    def _client_credentials(self) -> tuple[dict[str, str], dict[str, str]]:
        """(form fields, headers) that authenticate the client, as the profile's oauth_client_auth says:
        in the body, or HTTP Basic with id and secret form-encoded first (RFC 6749 §2.3.1)."""
        if self.client_auth == "basic":
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self._client_secret)}"
            basic = base64.b64encode(pair.encode()).decode()
            mask(basic)
            return {}, {"Authorization": f"Basic {basic}"}
        return {"client_id": self.client_id, "client_secret": self._client_secret}, {}

    def _grant(self, refresh_token: str, from_chain: bool, source: str | None = None) -> Grant:
        fields, auth_headers = self._client_credentials()
        response = self.hook.send(
            "POST token",
            "POST",
            TOKEN_ENDPOINT,
            idempotent=True,  # a repeat with a burnt token only yields invalid_grant
            data={"grant_type": "refresh_token", "refresh_token": refresh_token, **fields},
            headers={"Accept": "application/json", **self.hook.service_headers, **auth_headers},
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ProtocolError(f"qics POST token: HTTP {response.status_code}, expected a JSON object")
        if response.status_code >= 400 or "access_token" not in body:
            error = str(body.get("error") or f"HTTP {response.status_code}")
            if error == "invalid_client":
                raise AuthenticationError(
                    f"QicsMilestones refused the client credentials of connection {self.conn_id!r}"
                    f" (invalid_client, sent {self._how_sent()}): check the client ID and secret, the"
                    " profile's oauth_client_auth (body or basic) and, if the service wants one, the API key."
                )
            if error == "invalid_grant":
                source = source or (
                    "the stored (rotated) refresh token" if from_chain else "the connection's refresh token"
                )
                raise AuthenticationError(
                    f"QicsMilestones refused {source} of connection {self.conn_id!r} (invalid_grant: revoked,"
                    " expired or already used). Re-authorize the OAuth application in QicsMilestones and put"
                    f" the new refresh token in connection {self.conn_id!r}."
                )
            raise AuthenticationError(
                f"QicsMilestones token request of connection {self.conn_id!r} failed: {error}"
            )
        access, new_refresh = body.get("access_token"), body.get("refresh_token") or refresh_token
        mask(access, new_refresh)
        try:
            stated = float(body["expires_in"]) if "expires_in" in body else None
        except (TypeError, ValueError):
            stated = None
        lifetime = stated if stated is not None else 3600.0
        margin = min(EXPIRY_LEEWAY_SECONDS, lifetime / 4)
        return Grant(
            str(access),
            str(new_refresh),
            utcnow() + timedelta(seconds=lifetime - margin),
            rotated=str(new_refresh) != refresh_token,
            expires_in=stated,
        )


def clear_process_cache() -> None:
    """Forget access tokens cached in this process (tests)."""
    with _PROCESS_CACHE_LOCK:
        _PROCESS_CACHE.clear()
