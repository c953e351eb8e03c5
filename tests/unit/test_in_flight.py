"""The AIMD bound on requests in flight (king_qics.hooks.in_flight), driven by real threads."""

from __future__ import annotations

import threading
import time

import pytest

from king_qics.hooks.in_flight import InFlightLimiter


def test_at_most_the_limit_is_in_flight_across_threads():
    limiter, peak, lock = InFlightLimiter(3), [0], threading.Lock()

    def request():
        with limiter.slot():
            with lock:
                peak[0] = max(peak[0], limiter.in_flight)
            time.sleep(0.01)
        limiter.accepted()

    threads = [threading.Thread(target=request) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 3
    assert limiter.in_flight == 0


def test_a_refusal_halves_the_limit_once_per_window_and_answers_grow_it_back():
    limiter = InFlightLimiter(8)
    numbers = []
    for _ in range(8):  # a full window on the way when the refusals come
        with limiter.slot() as number:
            numbers.append(number)
    for number in numbers[:5]:  # five refusals of requests sent before the first decrease: one decrease
        limiter.throttled(number, retry_after=None)
    assert limiter.limit == 4
    with limiter.slot() as later:
        pass
    limiter.throttled(later, retry_after=None)  # sent after the decrease: a new window
    assert limiter.limit == 2
    for _ in range(2):  # additive: +1 per window of `limit` answers
        limiter.accepted()
    assert limiter.limit == pytest.approx(3, abs=0.2)
    for _ in range(100):
        limiter.accepted()
    assert limiter.limit == 8  # never past the maximum
    assert limiter.stats.throttled == 6 and limiter.stats.lowest == 2 and limiter.stats.decreases == [4, 2]


def test_never_below_one_and_nothing_is_sent_before_retry_after():
    limiter = InFlightLimiter(2)
    for _ in range(5):
        with limiter.slot() as number:
            pass
        limiter.throttled(number, retry_after=0.3)
    assert limiter.limit == 1
    started = time.monotonic()
    with limiter.slot():
        waited = time.monotonic() - started
    assert waited >= 0.25


def test_a_maximum_below_one_is_refused():
    with pytest.raises(ValueError):
        InFlightLimiter(0)
