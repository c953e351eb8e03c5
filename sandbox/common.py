"""Pieces both emulators share: call counting, fault injection and the ``/_sandbox/`` admin API.

Fault kinds (``POST /_sandbox/faults``, body ``{"faults": [rule, ...]}`` or a single rule; an
empty list or ``DELETE /_sandbox/faults`` switches all off):

- ``http_500`` / ``http_503``: answer with that status before handling the request;
- ``http_429``: answer 429 with ``Retry-After: <retry_after>`` (seconds, default 1);
- ``latency``: sleep ``latency_seconds`` before handling (then handle it: beyond the client's
  timeout this is a write that was committed although the client gave up);
- ``expire_session``: end every King session / Qics access token before handling;
- ``drop_after_commit``: handle the request (commit the write), then drop the connection after
  the status line, so the client never receives the body;
- ``raw_response``: answer ``status`` with ``body`` repeated ``repeat`` times (streamed) as
  ``content_type``, without handling the request: a misbehaving server or proxy (HTML error pages,
  broken JSON, XML with a DTD, a huge answer);
- ``rate_limit``: a service's request limit: a request arriving while ``max_in_flight`` admitted
  requests are still being handled, or after ``per_second`` were admitted in the last second, is
  answered 429 with ``Retry-After: <retry_after>`` (not handled, not counted as in flight);
  checked before the other rules, on every request it names (``probability`` does not apply).

Besides the rules, a server-wide ``latency`` (``PUT /_sandbox/latency`` with ``{"seconds": s}``, or
``python -m sandbox serve --latency-ms``) delays every emulated request by ``s`` while it counts as in
flight: the round trip of a real API on the internet. Loading data keeps it; ``GET /_sandbox/faults``
shows it with the peak of admitted requests in flight (``peak_in_flight``).

A rule fires with ``probability`` (default 1.0), at most ``count`` times (default unlimited), only
for the listed ``operations`` (default all), drawn from a generator seeded by ``seed``.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

FaultKind = Literal[
    "http_500",
    "http_503",
    "http_429",
    "latency",
    "expire_session",
    "drop_after_commit",
    "raw_response",
    "rate_limit",
]

DROP_FLAG = "sandbox_drop_response"
ADMITTED_FLAG = "sandbox_admitted"


class FaultRule(BaseModel):
    kind: FaultKind
    probability: float = Field(1.0, ge=0.0, le=1.0)
    count: int | None = Field(None, ge=0)
    operations: list[str] | None = None
    retry_after: float = 1.0
    latency_seconds: float = 0.0
    status: int = 200  # raw_response
    body: str = ""
    content_type: str = "text/xml; charset=utf-8"
    repeat: int = Field(1, ge=1)
    max_in_flight: int | None = Field(None, ge=1)  # rate_limit
    per_second: float | None = Field(None, gt=0)  # rate_limit
    fired: int = 0

    def matches(self, operation: str) -> bool:
        if self.count is not None and self.fired >= self.count:
            return False
        return self.operations is None or operation in self.operations


class FaultRequest(BaseModel):
    faults: list[FaultRule] = []
    seed: int | None = None


class Faults:
    """The fault switchboard of one emulator."""

    def __init__(self, seed: int | None = None):
        self.rules: list[FaultRule] = []
        self.rng = random.Random(seed)
        self.fired: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.latency_seconds = 0.0  # server-wide, kept across loads (see the module docstring)
        self.in_flight = 0
        self.peak_in_flight = 0
        self._admitted_at: deque[float] = deque()  # monotonic times of the last second's admissions

    def configure(self, request: FaultRequest) -> None:
        with self._lock:
            self.rules = list(request.faults)
            if request.seed is not None:
                self.rng = random.Random(request.seed)
            self.peak_in_flight = self.in_flight
            self._admitted_at.clear()  # a new per_second limit counts from now

    def clear(self) -> None:
        with self._lock:
            self.rules = []
            self.peak_in_flight = self.in_flight

    def admit(self, operation: str, request: Request | None) -> FaultRule | None:
        """Count the request as in flight, or return the rate_limit rule that refuses it."""
        with self._lock:
            now = time.monotonic()
            while self._admitted_at and self._admitted_at[0] <= now - 1.0:
                self._admitted_at.popleft()
            for rule in self.rules:
                if rule.kind != "rate_limit" or not rule.matches(operation):
                    continue
                over_flight = rule.max_in_flight is not None and self.in_flight >= rule.max_in_flight
                over_rate = rule.per_second is not None and len(self._admitted_at) >= rule.per_second
                if over_flight or over_rate:
                    rule.fired += 1
                    self.fired[rule.kind] += 1
                    return rule
            if request is not None:
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                self._admitted_at.append(now)
                request.scope.setdefault("state", {})[ADMITTED_FLAG] = True
        return None

    def done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def draw(self, operation: str, kinds: set[str]) -> FaultRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.kind in kinds and rule.matches(operation) and self.rng.random() < rule.probability:
                    rule.fired += 1
                    self.fired[rule.kind] += 1
                    return rule
        return None

    async def before(
        self, operation: str, expire: Callable[[], None], request: Request | None = None
    ) -> Response | None:
        """Apply the faults that strike before a request is handled; a response ends the request.
        ``request``: counted as in flight until its answer is sent (InFlightMiddleware)."""
        limited = self.admit(operation, request)
        if self.latency_seconds:
            await asyncio.sleep(self.latency_seconds)
        if limited is not None:
            return Response(
                "Too Many Requests", status_code=429, headers={"Retry-After": f"{limited.retry_after:g}"}
            )
        rule = self.draw(
            operation, {"http_500", "http_503", "http_429", "latency", "expire_session", "raw_response"}
        )
        if rule is None:
            return None
        if rule.kind == "raw_response":
            chunk = rule.body.encode("utf-8")
            return StreamingResponse(
                (chunk for _ in range(rule.repeat)), status_code=rule.status, media_type=rule.content_type
            )
        if rule.kind == "latency":
            await asyncio.sleep(rule.latency_seconds)
            return None
        if rule.kind == "expire_session":
            expire()
            return None
        if rule.kind == "http_429":
            return Response(
                "Too Many Requests", status_code=429, headers={"Retry-After": f"{rule.retry_after:g}"}
            )
        status = 500 if rule.kind == "http_500" else 503
        return Response("sandbox fault", status_code=status, media_type="text/plain")

    def drop_after_commit(self, request: Request, operation: str) -> None:
        """Call after a write is committed: maybe mark the response to be dropped."""
        if self.draw(operation, {"drop_after_commit"}) is not None:
            request.scope.setdefault("state", {})[DROP_FLAG] = True

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "rules": [rule.model_dump() for rule in self.rules],
                "fired": dict(self.fired),
                "latency_seconds": self.latency_seconds,
                "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
            }


class Calls:
    """Counts requests per operation, as the emulator names them."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, operation: str) -> None:
        with self._lock:
            self.counts[operation] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()


class DropResponseMiddleware:
    """Pure ASGI middleware: when a handler set the drop flag, send the status line and then
    abort the connection, so the client sees a response that never completes."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def guarded_send(message):
            if message["type"] == "http.response.body" and scope.get("state", {}).get(DROP_FLAG):
                raise ConnectionAbortedError("sandbox: response dropped after commit")
            await send(message)

        await self.app(scope, receive, guarded_send)


class InFlightMiddleware:
    """Pure ASGI middleware: a request that ``Faults.before`` admitted stops counting as in flight
    once its answer has been sent (or it failed)."""

    def __init__(self, app, faults: Faults):
        self.app, self.faults = app, faults

    async def __call__(self, scope, receive, send):
        try:
            await self.app(scope, receive, send)
        finally:
            if scope.get("state", {}).get(ADMITTED_FLAG):
                self.faults.done()


def admin_router(
    *,
    name: str,
    state: Callable[[], dict],
    load: Callable[[dict], None],
    calls: Calls,
    faults: Faults,
) -> APIRouter:
    """The ``/_sandbox/`` admin API of one emulator (never part of the emulated service)."""
    router = APIRouter(prefix="/_sandbox")

    @router.get("/state")
    def get_state() -> JSONResponse:
        return JSONResponse(state())

    @router.post("/load")
    async def post_load(request: Request) -> dict:
        body = await request.json()
        load(body.get(name, body) if isinstance(body, dict) else body)
        calls.reset()
        faults.clear()
        return {"loaded": True}

    @router.get("/calls")
    def get_calls() -> dict:
        return calls.snapshot()

    @router.delete("/calls")
    def delete_calls() -> dict:
        calls.reset()
        return {}

    @router.get("/faults")
    def get_faults() -> dict:
        return faults.describe()

    @router.post("/faults")
    async def post_faults(request: Request) -> dict:
        body = await request.json()
        if isinstance(body, dict) and "kind" in body:
            body = {"faults": [body]}
        faults.configure(FaultRequest.model_validate(body))
        return faults.describe()

    @router.delete("/faults")
    def delete_faults() -> dict:
        faults.clear()
        return faults.describe()

    @router.put("/latency")
    async def put_latency(request: Request) -> dict:
        faults.latency_seconds = float((await request.json())["seconds"])
        return faults.describe()

    return router
