"""The load step's Qics writes of one entity run, several at once.

``RecordWrites(workers)`` runs each write in one of ``workers`` threads (1: in the calling thread,
one after the other) and hands every outcome back to its ``done`` callback in the calling thread,
so the state store and the run's report are only ever touched there. The requests in flight are
bounded further by the hook's AIMD limiter (king_qics.hooks.in_flight), which a 429 lowers.

An exception of the ``outcomes`` types (a record Qics rejected) is an outcome like a result. Any
other exception (Qics unreachable after its retries, an unknown outcome, a refused token) ends the
load: nothing new is sent, the writes already on the way are waited for and their outcomes handed
over (each success is stored), and then it is raised in the calling thread.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

Done = Callable[[Any, BaseException | None], None]


class RecordWrites:
    def __init__(self, workers: int, outcomes: tuple[type[BaseException], ...]):
        self.workers, self.outcomes = workers, outcomes
        self._pool: ThreadPoolExecutor | None = None  # started by the first write
        self._running: dict[Future, Done] = {}
        self._error: BaseException | None = None

    def submit(self, write: Callable[[], Any], done: Done) -> None:
        if self.workers == 1:
            try:
                result = write()
            except self.outcomes as exc:
                done(None, exc)
            else:
                done(result, None)
            return
        self._raise_error()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="qics-write")
        self._running[self._pool.submit(write)] = done
        if len(self._running) >= 2 * self.workers:  # a few queued for each thread, never the whole table
            self._collect(FIRST_COMPLETED)
            self._raise_error()

    def finish(self) -> None:
        """Wait for every write; raises the error that ended the load, if one did."""
        self.close()
        self._raise_error()

    def close(self) -> None:
        """Wait for the writes on the way and hand over their outcomes (also when the load ends with
        an error); nothing new is started."""
        while self._running:
            self._collect(FIRST_COMPLETED)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _collect(self, how: str) -> None:
        finished, _ = wait(list(self._running), return_when=how)
        for future in finished:
            done = self._running.pop(future)
            error = future.exception()
            if error is None:
                done(future.result(), None)
            elif isinstance(error, self.outcomes):
                done(None, error)
            elif self._error is None:
                self._error = error

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self.close()
            raise error
