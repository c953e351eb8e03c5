"""The bare loop: the same HTTP calls as our sync, made with nothing but ``requests.Session``.

``record()`` notes every request our code sends (method, URL, headers, body; a reference per call,
so it adds next to nothing to the timed run). ``replay()`` sends them again, in order, against
sandboxes reloaded with the same data: the same SOAP envelopes to King and the same OAuth token
request and JSON bodies to Qics. Only what the servers hand out is exchanged on the way: a King
session id from Login and the Qics tokens from the token call. The ratio ours / bare is then our
own overhead (mapping, diff, state store, hooks) against the calls alone.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests
from requests.adapters import HTTPAdapter

# Values a server hands out that later requests carry.
_HANDED_OUT = [
    re.compile(r"<SessionId>([^<]+)</SessionId>"),
    re.compile(r'"access_token"\s*:\s*"([^"]+)"'),
    re.compile(r'"refresh_token"\s*:\s*"([^"]+)"'),
]
_NOT_REPLAYED_HEADERS = {"content-length", "connection", "accept-encoding"}


def handed_out(text: str) -> list[str]:
    return [match for pattern in _HANDED_OUT for match in pattern.findall(text)]


@dataclass
class Call:
    method: str
    url: str
    headers: dict
    body: bytes | str | None
    status: int
    tokens: list[str] = field(default_factory=list)


@contextmanager
def record():
    """Every request sent through requests in this process while inside, as a list of Calls."""
    calls: list[Call] = []
    original = HTTPAdapter.send

    def send(adapter, request, *args, **kwargs):
        response = original(adapter, request, *args, **kwargs)
        tokens = handed_out(response.text) if _may_hand_out(request) else []
        calls.append(
            Call(
                request.method, request.url, dict(request.headers), request.body, response.status_code, tokens
            )
        )
        return response

    HTTPAdapter.send = send
    try:
        yield calls
    finally:
        HTTPAdapter.send = original


def _may_hand_out(request) -> bool:
    body = request.body or b""
    body = body if isinstance(body, bytes) else body.encode()
    return b"<Login" in body or request.url.endswith("/token")


def replay(calls: list[Call]) -> dict:
    """Send the recorded calls with a plain session; returns wall and CPU time and the statuses."""
    session = requests.Session()
    exchanged: dict[str, str] = {}
    statuses: list[int] = []
    started, cpu = time.perf_counter(), time.process_time()
    for call in calls:
        headers = {
            name: _swap(value, exchanged)
            for name, value in call.headers.items()
            if name.lower() not in _NOT_REPLAYED_HEADERS
        }
        response = session.request(
            call.method, call.url, headers=headers, data=_swap(call.body, exchanged), timeout=60
        )
        statuses.append(response.status_code)
        if call.tokens:
            exchanged.update(zip(call.tokens, handed_out(response.text), strict=False))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    session.close()
    return {"wall": wall, "cpu": cpu, "statuses": statuses}


def _swap(value, exchanged: dict[str, str]):
    if not exchanged or value is None:
        return value
    for old, new in exchanged.items():
        if isinstance(value, bytes):
            value = value.replace(old.encode(), new.encode())
        else:
            value = value.replace(old, new)
    return value
