"""The sandboxes' server-wide latency and their rate_limit rule (sandbox/common.py), over HTTP."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests


@pytest.fixture
def slow(sandbox):
    """200 ms latency on the Qics sandbox, switched off again afterwards (the sandboxes are shared)."""
    sandbox.admin("qics", "PUT", "latency", json={"seconds": 0.2})
    try:
        yield sandbox
    finally:
        sandbox.admin("qics", "PUT", "latency", json={"seconds": 0})


def get_many(sandbox, count: int) -> list[requests.Response]:
    """``count`` requests at once (no token: an admitted one is answered 401 after the latency)."""
    url = f"{sandbox.qics_base}/api/V3/odata/CostCenter"
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: requests.get(url, timeout=10), range(count)))


def test_latency_delays_every_call_and_survives_a_load(slow):
    slow.load({"qics": {}, "king": {}})
    started = time.monotonic()
    response = requests.get(f"{slow.qics_base}/api/V3/odata/CostCenter", timeout=10)
    assert response.status_code == 401
    assert time.monotonic() - started >= 0.2
    assert slow.admin("qics", "GET", "faults")["latency_seconds"] == 0.2


def test_more_requests_in_flight_than_the_limit_are_answered_429_with_retry_after(slow):
    slow.faults("qics", {"kind": "rate_limit", "max_in_flight": 2, "retry_after": 3})
    answers = get_many(slow, 6)
    statuses = sorted(response.status_code for response in answers)
    assert statuses == [401, 401, 429, 429, 429, 429]
    assert {r.headers["Retry-After"] for r in answers if r.status_code == 429} == {"3"}
    faults = slow.admin("qics", "GET", "faults")
    assert (faults["rules"][0]["fired"], faults["peak_in_flight"], faults["in_flight"]) == (4, 2, 0)
    assert sorted(r.status_code for r in get_many(slow, 2)) == [401, 401]  # the slots were given back


def test_more_requests_per_second_than_the_limit_are_answered_429(sandbox):
    sandbox.faults("qics", {"kind": "rate_limit", "per_second": 3, "operations": ["GET CostCenter"]})
    url = f"{sandbox.qics_base}/api/V3/odata/CostCenter"
    statuses = [requests.get(url, timeout=10).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    assert requests.get(f"{sandbox.qics_base}/api/V3/odata/Item", timeout=10).status_code == 401
    time.sleep(1.05)
    assert requests.get(url, timeout=10).status_code == 401
