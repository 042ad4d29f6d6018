"""A key's waiting line: requests over the key's (or its user's, its team's) rpm / tpm / parallel limit wait here.

The router's group line (``llmplex.router.admission``) for virtual keys, with the same settings and rules:
one ``KeyLine`` per key while anyone waits, ordered by ``(priority, arrival)`` (a lower ``priority``
first, FIFO within one), at most ``queue_max_length`` waiting (over it: 429 at once), each waiter for
at most its bound (``queue_timeout`` capped by the request's timeout), then LiteLLM's 429 with
``retry-after``. One dispatcher task per line admits the head through the limiter's own admit (one
atomic Lua call with Redis, so the limit stays exact across workers and replicas) and hands it over
already counted. While the head cannot be admitted it sleeps, never polling Redis:
- until the end of the full rpm/tpm window (a known time; then one admit is tried);
- for ``max_parallel_requests``, until a call of this process finishes (``freed()``) or, with Redis,
  another process says one finished (the limiter publishes on release; the key service's listener
  calls ``freed()``), with a re-check every ``_PARALLEL_RECHECK`` seconds in case a message was lost.
Newcomers and waiters giving up wake it too (the head may have changed).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from llmplex.proxy.errors import ProxyError
from llmplex.proxy.keys.model import Entity

if TYPE_CHECKING:
    from llmplex.proxy.keys.limits import Admission, Full, LocalLimiter

__all__ = ["KeyLine"]

_MARGIN = 0.002  # seconds slept past a window's end: timers may fire early
_PARALLEL_RECHECK = 1.0  # with Redis, a lost "freed" message delays a parallel waiter at most this long


class _Waiter:
    __slots__ = ("entities", "future", "order")

    def __init__(self, order: tuple[int, int], entities: Sequence[Entity], future: asyncio.Future[Admission]) -> None:
        self.order = order
        self.entities = entities
        self.future = future

    def __lt__(self, other: _Waiter) -> bool:
        return self.order < other.order


class KeyLine:
    """The requests of one key waiting for its limits, and the task that admits them in order."""

    def __init__(self, limiter: LocalLimiter, name: str, max_length: int) -> None:
        self._limiter = limiter
        self._name = name
        self._max_length = max_length
        self._heap: list[_Waiter] = []
        self._arrivals = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last: Full | None = None  # what the head last met: the refusal of those who give up

    def __len__(self) -> int:
        return len(self._heap)

    def freed(self) -> None:
        """A call finished: a parallel slot may be free."""
        self._wake.set()

    async def wait(
        self, entities: Sequence[Entity], priority: int, bound: float, full: Full | None = None
    ) -> Admission:
        """Admitted (counted) for this request, or a 429 once ``bound`` seconds passed (at once when the line is full).

        ``full``: what this request met on its own try, if it made one (the refusal until the head meets something).
        """
        if full is not None:
            self._last = full
        if len(self._heap) >= self._max_length:
            raise self._refusal()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Admission] = loop.create_future()
        heapq.heappush(self._heap, _Waiter((priority, next(self._arrivals)), entities, future))
        self._wake.set()
        if self._task is None:
            self._task = loop.create_task(self._dispatch(), name="llmplex-key-line")
        try:
            async with asyncio.timeout(bound):
                return await future
        except BaseException as exc:
            if future.done() and not future.cancelled() and future.exception() is None:
                self._limiter.release(future.result(), 0)  # admitted just as this request gave up
            else:
                future.cancel()
            self._wake.set()  # the head may have left
            if isinstance(exc, TimeoutError):
                raise self._refusal() from None
            raise

    def _refusal(self) -> ProxyError:
        last = self._last
        if last is None:  # the line is full before its head met anything (cannot happen with max_length > 0)
            error = ProxyError(429, "Rate limit exceeded: too many requests wait for this key", type="rate_limit_error")
            error.retry_after = 1
            return error
        return last.refusal(self._limiter.clock())

    async def _dispatch(self) -> None:
        from llmplex.proxy.keys.limits import Admission

        limiter, heap = self._limiter, self._heap
        try:
            while heap:
                head = heap[0]
                if head.future.done():  # gave up (bound passed, client gone)
                    heapq.heappop(heap)
                    continue
                self._wake.clear()
                got = await limiter.try_admit(head.entities)
                if type(got) is Admission:
                    self._hand_over(got)
                    continue
                assert not isinstance(got, Admission)
                self._last = got
                await self._sleep(got.until)
        finally:
            self._task = None
            for waiter in heap:  # only when the task itself ends abnormally (cancelled at shutdown)
                if not waiter.future.done():
                    waiter.future.set_exception(self._refusal())
            heap.clear()
            limiter.line_closed(self._name, self)

    def _hand_over(self, admission: Admission) -> None:
        """The first waiter still waiting gets it (the head may have given up while Redis answered)."""
        while self._heap:
            waiter = heapq.heappop(self._heap)
            if not waiter.future.done():
                waiter.future.set_result(admission)
                return
        self._limiter.release(admission, 0)

    async def _sleep(self, until: float) -> None:
        limiter = self._limiter
        if until == math.inf:  # a parallel slot: a release wakes us (from another process only via Redis)
            delay = _PARALLEL_RECHECK if limiter.shared else limiter.window
        else:
            delay = min(max(until - limiter.clock(), 0.0) + _MARGIN, limiter.window)
        try:
            async with asyncio.timeout(delay):
                await self._wake.wait()
        except TimeoutError:
            pass
