"""Transport shared by both hooks: one session, timeouts, bounded retries, counters, masking.

Each hook subclasses :class:`ApiHook` and sends every request through :meth:`ApiHook.send`, which
- applies a timeout to every request;
- retries connection errors, timeouts, HTTP 429 and 5xx with exponential backoff and jitter,
  honouring ``Retry-After`` (bounded by ``max_attempts``);
- never retries a non-idempotent write whose outcome is unknown (the request may have reached the
  server): it raises :class:`OutcomeUnknownError` so the caller can look the record up first;
- counts calls per operation (``call_counts()``) and writes one debug line per call;
- lets at most ``max_in_flight`` requests be on the way at once when several threads send
  (``in_flight``, an AIMD bound that a 429 or 503 lowers: king_qics.hooks.in_flight).

Secrets are registered with Airflow's secrets masker as soon as a hook reads its connection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import cached_property
from typing import Any

import requests
import tenacity
import urllib3
from airflow.providers.http.hooks.http import HttpHook
from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter

from king_qics.errors import OutcomeUnknownError, ProtocolError, TransientError
from king_qics.hooks.in_flight import InFlightLimiter

log = logging.getLogger(__name__)

_CALLS: Counter[str] = Counter()
_CALLS_LOCK = threading.Lock()

# Extras that configure requests (timeouts, proxies, TLS); every other extra is configuration of
# ours and must never be sent as an HTTP header (HttpHook's default behaviour).
_TRANSPORT_EXTRAS = {"timeout", "verify", "verify_ssl", "proxies", "proxy", "cert", "trust_env"}

_NOT_PROCESSED_STATUSES = {429, 503}  # the server says it did not handle the request
_DEFAULT_POOL_SIZE = 10  # the connections requests keeps per host (HttpHook's adapter: TCP keep-alive)


def call_counts() -> dict[str, int]:
    """Calls made by all hooks in this process, keyed ``<api>.<operation>``."""
    with _CALLS_LOCK:
        return dict(_CALLS)


def reset_call_counts() -> None:
    with _CALLS_LOCK:
        _CALLS.clear()


def mask(*secrets: object) -> None:
    """Register values with Airflow's secrets masker (task logs, rendered fields, exceptions)."""
    from airflow.sdk.log import mask_secret

    for secret in secrets:
        if secret not in (None, ""):
            mask_secret(str(secret))


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class _WaitRetryAfterOrBackoff(tenacity.wait.wait_base):
    """Wait what the server asked for (Retry-After), else exponential backoff with jitter."""

    def __init__(self, initial: float, maximum: float):
        self.backoff = tenacity.wait_random_exponential(multiplier=initial, max=maximum)
        self.maximum = maximum

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.maximum)
        return self.backoff(retry_state)


class ApiHook(HttpHook):
    """Base of KingFinanceHook and QicsMilestonesHook (built on providers-http's HttpHook)."""

    api_name = "api"
    default_timeout: float = 60.0
    default_max_attempts: int = 5
    default_backoff_initial: float = 0.5
    default_backoff_max: float = 30.0
    # An answer larger than this is refused while it is read (a misbehaving server must not be
    # able to exhaust the worker's memory); extra ``max_response_bytes`` overrides it.
    default_max_response_bytes: int = 64 * 2**20

    def __init__(
        self,
        conn_id: str,
        *,
        timeout: float | None = None,
        max_attempts: int | None = None,
        backoff_initial: float | None = None,
        backoff_max: float | None = None,
        max_in_flight: int = 1,
    ):
        super().__init__(method="POST", http_conn_id=conn_id)
        self.conn_id = conn_id
        self.in_flight = InFlightLimiter(max_in_flight)
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max

    # -- connection settings -------------------------------------------------------------------

    @cached_property
    def connection(self):
        return self.get_connection(self.conn_id)

    def extra(self, name: str, default: Any = None) -> Any:
        """A connection field of ours: plain extra key, or the prefixed form older UIs write."""
        extras = self.connection.extra_dejson
        for key in (name, f"extra__{self.conn_type}__{name}"):
            if extras.get(key) not in (None, ""):
                return extras[key]
        return default

    def _setting(self, explicit: Any, extra_name: str, default: Any) -> Any:
        if explicit is not None:
            return explicit
        value = self.extra(extra_name)
        return type(default)(value) if value is not None else default

    @cached_property
    def timeout(self) -> float:
        return self._setting(self._timeout, "timeout", self.default_timeout)

    @cached_property
    def max_attempts(self) -> int:
        return self._setting(self._max_attempts, "max_attempts", self.default_max_attempts)

    @cached_property
    def backoff_initial(self) -> float:
        return self._setting(self._backoff_initial, "backoff_initial", self.default_backoff_initial)

    @cached_property
    def backoff_max(self) -> float:
        return self._setting(self._backoff_max, "backoff_max", self.default_backoff_max)

    @cached_property
    def max_response_bytes(self) -> int:
        return self._setting(None, "max_response_bytes", self.default_max_response_bytes)

    def _configure_session_from_extra(self, session, connection, extra_options):
        transport_only = {k: v for k, v in connection.extra_dejson.items() if k in _TRANSPORT_EXTRAS}
        proxies = transport_only.get("proxies", transport_only.get("proxy"))
        if proxies:
            session.proxies = proxies
        if "verify" in transport_only or "verify_ssl" in transport_only:
            session.verify = transport_only.get("verify", transport_only.get("verify_ssl"))
        if transport_only.get("cert"):
            session.cert = transport_only["cert"]
        if "trust_env" in transport_only:
            session.trust_env = bool(transport_only["trust_env"])
        return session

    @cached_property
    def session(self) -> requests.Session:
        """One pooled session per hook instance (HttpHook.run builds a new one per call)."""
        session = self.get_conn()
        _resolve_environment_once(session, self.base_url)
        if self.in_flight.maximum > _DEFAULT_POOL_SIZE:  # a connection kept for every request in flight
            size = self.in_flight.maximum
            adapter = TCPKeepAliveAdapter(idle=120, count=20, interval=30, pool_maxsize=size)
            for prefix in ("http://", "https://"):
                session.mount(prefix, adapter)
        return session

    def url(self, endpoint: str = "") -> str:
        self.session  # noqa: B018 - sets base_url
        return self.url_from_endpoint(endpoint)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if "session" in self.__dict__:
            self.session.close()
            del self.__dict__["session"]

    # -- sending -------------------------------------------------------------------------------

    @property
    def attempt_deadline(self) -> float:
        """The longest one attempt can take: its answer must be complete ``2 x timeout`` after it
        started (connecting, then answering), checked between reads, each read ``timeout`` at most:
        so a slow or trickling server cannot stretch an attempt beyond ``3 x timeout``."""
        return 3 * self.timeout

    def worst_case_seconds(self) -> float:
        """The longest one call (every attempt and every wait between them) can take."""
        return self.max_attempts * self.attempt_deadline + (self.max_attempts - 1) * self.backoff_max

    def send(
        self,
        operation: str,
        method: str,
        endpoint: str,
        *,
        idempotent: bool,
        before_attempt: Callable[[], None] | None = None,
        **request_kwargs: Any,
    ) -> requests.Response:
        """Send one request with retries; returns the response of any status that is not transient.

        Transient answers (429, 5xx) and transport failures are retried. For a non-idempotent
        write, a failure after the request may have reached the server raises
        :class:`OutcomeUnknownError` at once instead of being retried. ``before_attempt`` runs
        before every attempt goes on the wire (a write's caller records when it was last sent, and
        may refuse to send by raising).
        """
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(
                lambda exc: isinstance(exc, TransientError) and not isinstance(exc, OutcomeUnknownError)
            ),
            wait=_WaitRetryAfterOrBackoff(self.backoff_initial, self.backoff_max),
            stop=tenacity.stop_after_attempt(self.max_attempts),
            before_sleep=self._log_retry(operation),
            reraise=True,
        )
        return retrying(
            self._send_once, operation, method, endpoint, idempotent, request_kwargs, before_attempt
        )

    def _log_retry(self, operation: str):
        def before_sleep(retry_state: tenacity.RetryCallState) -> None:
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            log.warning(
                "%s %s failed (attempt %d of %d): %s; retrying in %.1f s",
                self.api_name,
                operation,
                retry_state.attempt_number,
                self.max_attempts,
                exc,
                retry_state.upcoming_sleep,
            )

        return before_sleep

    def _send_once(
        self,
        operation: str,
        method: str,
        endpoint: str,
        idempotent: bool,
        request_kwargs: dict,
        before_attempt: Callable[[], None] | None = None,
    ) -> requests.Response:
        if before_attempt is not None:
            before_attempt()
        with _CALLS_LOCK:
            _CALLS[f"{self.api_name}.{operation}"] += 1
        url, started = self.url(endpoint), time.monotonic()
        try:
            with self.in_flight.slot() as number:
                started = time.monotonic()  # the wait for a slot is not the request's
                response = self.session.request(
                    method,
                    url,
                    timeout=self.timeout,
                    allow_redirects=False,
                    stream=True,
                    **request_kwargs,
                )
                # read the body now (a dropped body is a transport failure), at most max_response_bytes
                _read_body(
                    response,
                    self.max_response_bytes,
                    f"{self.api_name} {operation}",
                    deadline=started + 2 * self.timeout,
                )
        except requests.exceptions.ConnectTimeout as exc:
            raise TransientError(f"{self.api_name} {operation}: connect timeout") from exc
        except requests.exceptions.ConnectionError as exc:
            if not idempotent and not _never_sent(exc):
                raise OutcomeUnknownError(
                    f"{self.api_name} {operation}: connection lost after sending; outcome unknown"
                ) from exc
            raise TransientError(f"{self.api_name} {operation}: connection failed") from exc
        except (requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            if not idempotent:
                raise OutcomeUnknownError(
                    f"{self.api_name} {operation}: no answer within {self.timeout:.0f} s; outcome unknown"
                ) from exc
            raise TransientError(
                f"{self.api_name} {operation}: no answer within {self.timeout:.0f} s"
            ) from exc
        finally:
            elapsed_ms = (time.monotonic() - started) * 1000
        log.debug("%s %s -> HTTP %s in %.0f ms", self.api_name, operation, response.status_code, elapsed_ms)
        if response.status_code in _NOT_PROCESSED_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            self.in_flight.throttled(number, retry_after)
            raise TransientError(
                f"{self.api_name} {operation}: HTTP {response.status_code}", retry_after=retry_after
            )
        self.in_flight.accepted()
        if response.status_code >= 500 and self.is_transient_server_error(response):
            if not idempotent:
                raise OutcomeUnknownError(
                    f"{self.api_name} {operation}: HTTP {response.status_code} after sending; outcome unknown"
                )
            raise TransientError(f"{self.api_name} {operation}: HTTP {response.status_code}")
        return response

    def is_transient_server_error(self, response: requests.Response) -> bool:
        """A 5xx that says nothing more than 'try again'. Subclasses recognise their fault bodies."""
        return True


def _resolve_environment_once(session: requests.Session, base_url: str) -> None:
    """Take the environment's proxy variables, CA bundle and .netrc into the session once.

    With ``trust_env`` requests reads them again for every request, scanning all of os.environ
    each time: a third of our client-side CPU per record in a bulk load (bench/RESULTS.md). Every
    request of a hook goes to its connection's host and a task's environment does not change
    while it runs, so resolving them once for the base URL gives the same settings."""
    if not session.trust_env:
        return
    settings = session.merge_environment_settings(base_url, {}, None, None, None)
    session.proxies, session.verify = settings["proxies"], settings["verify"]
    if session.auth is None:
        session.auth = requests.utils.get_netrc_auth(base_url)
    session.trust_env = False


def _read_body(response: requests.Response, limit: int, what: str, deadline: float) -> None:
    """Read the (decoded) body into ``response.content``, refusing it once it exceeds ``limit``
    or once the attempt's ``deadline`` (time.monotonic) has passed: requests' timeout bounds each
    socket read, not the whole answer."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise ProtocolError(
            f"{what}: the answer announces {int(declared):,} bytes, over the limit of {limit:,}"
        )
    if response._content_consumed:  # already read (e.g. by a transport adapter in front of us)
        if len(response.content) > limit:
            raise ProtocolError(f"{what}: the answer exceeds the limit of {limit:,} bytes; refused")
        return
    chunks, size = [], 0
    try:
        while chunk := response.raw.read1(256 * 1024, decode_content=True):  # what has arrived
            size += len(chunk)
            if size > limit:
                response.close()
                raise ProtocolError(f"{what}: the answer exceeds the limit of {limit:,} bytes; refused")
            if time.monotonic() > deadline:
                response.close()
                raise requests.exceptions.ReadTimeout(f"{what}: no complete answer within the deadline")
            chunks.append(chunk)
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.exceptions.ReadTimeout(str(exc)) from exc
    except urllib3.exceptions.ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(str(exc)) from exc
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(str(exc)) from exc
    response._content = b"".join(chunks)
    response._content_consumed = True


def _never_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection failed before the request could reach the server."""
    text = repr(exc)
    return any(marker in text for marker in ("NewConnectionError", "ConnectionRefused", "NameResolution"))
