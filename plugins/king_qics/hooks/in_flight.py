"""How many requests of one hook may be in flight at once: a bound found by AIMD.

The limit starts at the configured maximum (``qics_write_concurrency`` of the administration) and
- grows by one per full window of answers the service accepted (additive increase: +1/limit per
  answer), never past the maximum;
- halves, not below one, when the service says it is over its limit (HTTP 429, or 503 "try again"),
  at most once per window of requests that were already on the way when the first such answer came
  (multiplicative decrease); and nothing new is sent before the ``Retry-After`` it named has passed.

So a service whose limit is lower than the maximum is probed, not flooded: the requests in flight
settle just under what it accepts. With a maximum of 1 this is the serial behaviour of a hook that
has no limiter at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class InFlightStats:
    """What the limiter did during a run (logged by the sync)."""

    maximum: int
    lowest: int
    throttled: int = 0  # answers that said "over the limit"
    decreases: list[int] = field(default_factory=list)  # the limit after each decrease

    def describe(self, current: float) -> str:
        if not self.throttled:
            return f"up to {self.maximum} requests in flight; the service never said it was over its limit"
        return (
            f"up to {self.maximum} requests in flight; {self.throttled} answers said over the limit, "
            f"so the limit went down to {self.lowest} (now {int(current)})"
        )


class InFlightLimiter:
    """Thread-safe AIMD bound on requests in flight (see the module docstring)."""

    def __init__(self, maximum: int):
        if maximum < 1:
            raise ValueError(f"the maximum of requests in flight must be at least 1, not {maximum}")
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_flight = 0
        self._sent = 0  # requests let through so far (numbers the windows)
        self._decreased_at = -1  # the request number up to which answers belong to the last decrease
        self._paused_until = 0.0
        self._condition = threading.Condition()
        self.stats = InFlightStats(maximum=maximum, lowest=maximum)

    @contextmanager
    def slot(self) -> Iterator[int]:
        """Hold one place in flight for one request; yields the request's number."""
        with self._condition:
            while True:
                wait = self._paused_until - time.monotonic()
                if wait <= 0 and self.in_flight < int(self.limit):
                    break
                self._condition.wait(timeout=wait if wait > 0 else None)
            self.in_flight += 1
            self._sent += 1
            number = self._sent
        try:
            yield number
        finally:
            with self._condition:
                self.in_flight -= 1
                self._condition.notify_all()

    def accepted(self) -> None:
        """The service handled a request (any answer but "over the limit")."""
        with self._condition:
            if self.limit < self.maximum:
                self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
                self._condition.notify_all()

    def throttled(self, number: int, retry_after: float | None) -> None:
        """The service refused request ``number`` as over its limit; ``retry_after``: seconds it named."""
        with self._condition:
            self.stats.throttled += 1
            if retry_after:
                self._paused_until = max(self._paused_until, time.monotonic() + retry_after)
            if number > self._decreased_at:  # the first refusal of this window: decrease once
                self.limit = max(1.0, self.limit / 2)
                self._decreased_at = self._sent
                self.stats.lowest = min(self.stats.lowest, int(self.limit))
                self.stats.decreases.append(int(self.limit))
            self._condition.notify_all()

    def describe(self) -> str:
        with self._condition:
            return self.stats.describe(self.limit)
