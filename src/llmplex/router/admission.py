"""The waiting line: a request that finds every deployment of its group at a limit or cooling down waits here.

One ``WaitingLine`` per group while anyone waits, ordered by ``(priority, arrival)``: a lower
``priority`` first (LiteLLM's scheduler), first come first served within one. One dispatcher task
per line serves the head: it admits a deployment for it through the state's atomic admit (so
Redis-shared limits stay exact across workers and replicas) and hands it over already counted in
flight. While nothing can be admitted it sleeps until the earliest moment capacity can free, never
polling Redis:
- the end of the rpm/tpm window or of a cooldown (known times; after it, one atomic admit is tried);
- a call of the group finishing in this process (``max_parallel_requests``; ``freed()`` wakes it);
- with Redis, calls in flight in other processes are seen through the state's background sync, so a
  group with ``max_parallel_requests`` is re-checked against that view every ``SYNC_INTERVAL`` (no
  Redis call unless the view says a slot is free).
New arrivals go behind the waiters (``RoutingCore._pick_now`` sends them here while a line exists),
so a freed slot goes to the head, not to whoever asks first.

A waiter gives up after its bound (``queue_timeout``, capped by the request's timeout) with a
``RateLimitError`` carrying ``retry_after``; a line at ``queue_max_length`` answers that at once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from typing import TYPE_CHECKING

from llmplex.exceptions import RateLimitError
from llmplex.router.deployments import Deployment

if TYPE_CHECKING:
    from llmplex.router.core import RoutingCore

__all__ = ["WaitingLine"]

_MARGIN = 0.002  # seconds slept past a window's end: timers may fire early, Redis' clock is not ours
_MAX_SLEEP = 1.0  # a dispatcher re-checks at least this often (a check without capacity costs no I/O)
_SHARED_RECHECK = 0.2  # the Redis state's sync interval: how often other processes' in-flight counts change


class _Waiter:
    __slots__ = ("avoid", "future", "key")

    def __init__(self, key: tuple[int, int], avoid: set[int], future: asyncio.Future[Deployment]) -> None:
        self.key = key
        self.avoid = avoid
        self.future = future

    def __lt__(self, other: _Waiter) -> bool:
        return self.key < other.key


class WaitingLine:
    """The requests of one group waiting for capacity, and the task that admits them in order."""

    def __init__(self, core: RoutingCore, group: str) -> None:
        self._core = core
        self._group = group
        self._heap: list[_Waiter] = []
        self._arrivals = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # other processes' finished calls are only seen through the shared state's sync
        self._recheck = core.state.shared and any(
            d.max_parallel_requests is not None for d in core.group_deployments(group)
        )

    def __len__(self) -> int:
        return len(self._heap)

    def freed(self) -> None:
        """A call of the group finished here: capacity may be free (``max_parallel_requests``)."""
        self._wake.set()

    async def wait(self, avoid: set[int], priority: int, timeout: float) -> Deployment:
        """A deployment admitted (and counted in flight) for this request, or ``RateLimitError`` after ``timeout``."""
        core = self._core
        if len(self._heap) >= core.settings.queue_max_length:
            raise self._refusal(f"the waiting line is full ({core.settings.queue_max_length} requests)")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Deployment] = loop.create_future()
        heapq.heappush(self._heap, _Waiter((priority, next(self._arrivals)), avoid, future))
        self._wake.set()  # the head may have changed; and a dispatcher asleep without a known end re-checks
        if self._task is None:
            self._task = loop.create_task(self._dispatch(), name=f"llmplex-admission-{self._group}")
        try:
            async with asyncio.timeout(timeout):
                return await future
        except BaseException as exc:
            if future.done() and not future.cancelled() and future.exception() is None:
                core.release(self._group, future.result())  # admitted just as this request gave up
            else:
                future.cancel()
            if isinstance(exc, TimeoutError):
                raise self._refusal(f"no capacity freed within {timeout:g}s of waiting") from None
            raise

    def _refusal(self, why: str) -> RateLimitError:
        _, wait = self._core.candidates(self._group)
        error = RateLimitError(
            f"No deployments available for model {self._group!r}: every deployment is at its rpm/tpm/"
            f"max_parallel_requests limit or cooling down, and {why}",
            model=self._group,
            retry_after=math.ceil(wait) if wait is not None and wait != math.inf and wait > 0 else 1,
        )
        return error

    async def _dispatch(self) -> None:
        core, heap, group = self._core, self._heap, self._group
        try:
            while heap:
                head = heap[0]
                if head.future.done():  # gave up (timeout, client gone)
                    heapq.heappop(heap)
                    continue
                self._wake.clear()
                try:
                    deployment, wait = await core.try_pick(group, head.avoid)
                except Exception as exc:  # the shared state refuses (redis_failure_mode: closed): the head learns it
                    waiter = heapq.heappop(heap)
                    if not waiter.future.done():
                        waiter.future.set_exception(exc)
                    continue
                if deployment is not None:
                    self._hand_over(deployment)
                    continue
                await self._sleep(wait)
        finally:
            self._task = None
            for waiter in heap:  # only when the task itself ends abnormally (cancelled at shutdown)
                if not waiter.future.done():
                    waiter.future.set_exception(self._refusal("the router is shutting down"))
            heap.clear()
            core.line_closed(group, self)

    def _hand_over(self, deployment: Deployment) -> None:
        """The first waiter still waiting gets it (the head may have given up while Redis answered)."""
        while self._heap:
            waiter = heapq.heappop(self._heap)
            if not waiter.future.done():
                waiter.future.set_result(deployment)
                return
        self._core.release(self._group, deployment)

    async def _sleep(self, wait: float | None) -> None:
        delay = _MAX_SLEEP if wait is None or wait == math.inf else min(wait + _MARGIN, _MAX_SLEEP)
        if self._recheck:
            delay = min(delay, _SHARED_RECHECK)
        try:
            async with asyncio.timeout(delay):
                await self._wake.wait()
        except TimeoutError:
            pass
