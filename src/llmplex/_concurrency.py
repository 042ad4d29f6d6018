"""LLM-agnostic concurrency primitives: a first-success race, a settled gather, a bounded worker pool.

Nothing here knows about models or HTTP: attempts are labelled zero-argument coroutine factories.
Every task these functions start is finished (done or cancelled *and awaited*) before they return
or raise, including when the caller itself is cancelled, so nothing is left running behind the
caller's back. Cancelling an HTTP call closes its connection (see ``_transport``), so awaiting the
cancellation costs microseconds, not the upstream's latency.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from llmplex.exceptions import AllModelsFailedError, Timeout

__all__ = ["Attempt", "RaceOutcome", "bounded_map", "gather_settled", "race_first"]

T = TypeVar("T")
R = TypeVar("R")

AttemptStatus = Literal["won", "failed", "cancelled", "not_started"]


@dataclass
class Attempt:
    """One contender of a race, as it ended."""

    label: str
    status: AttemptStatus = "not_started"
    started_at: float | None = None  # seconds since the race started
    latency_ms: float | None = None  # from its start until success, failure or cancellation
    error: BaseException | None = None


@dataclass
class RaceOutcome(Generic[T]):
    value: T
    winner: str
    winner_index: int
    attempts: list[Attempt]


class _Race(Generic[T]):
    """State of one ``race_first`` call; methods are small steps of the loop below."""

    def __init__(self, labels: Sequence[str], factories: Sequence[Callable[[], Awaitable[T]]]) -> None:
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.factories = factories
        self.attempts = [Attempt(label) for label in labels]
        self.tasks: dict[asyncio.Task[T], int] = {}
        self.next_index = 0
        self.last_start = self.t0

    def start_next(self) -> None:
        i = self.next_index
        self.next_index += 1
        now = self.loop.time()
        self.last_start = now
        self.attempts[i].started_at = now - self.t0
        task: asyncio.Task[T] = self.loop.create_task(_call(self.factories[i]))
        # the finish time is taken when the task ends, not when the race loop gets to it
        task.add_done_callback(functools.partial(self._stamp, i, now))
        self.tasks[task] = i

    def _stamp(self, i: int, start: float, _task: object) -> None:
        self.attempts[i].latency_ms = (self.loop.time() - start) * 1000.0

    @property
    def has_unstarted(self) -> bool:
        return self.next_index < len(self.factories)

    def running(self) -> set[asyncio.Task[T]]:
        return {t for t in self.tasks if not t.done()}

    async def cancel_all(self, discard: Callable[[T], Awaitable[None]] | None, keep: asyncio.Task[T] | None) -> None:
        """Cancel every other task, await them, hand late successes to ``discard``."""
        others = [t for t in self.tasks if t is not keep]
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others)
        for task in others:
            attempt = self.attempts[self.tasks[task]]
            if task.cancelled():
                attempt.status = "cancelled"
                continue
            error = task.exception()
            if error is not None:
                attempt.status, attempt.error = "failed", error
                continue
            attempt.status = "cancelled"  # it finished too, but lost: release what it holds
            if discard is not None:
                await discard(task.result())


async def _call(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


async def race_first(
    labels: Sequence[str],
    factories: Sequence[Callable[[], Awaitable[T]]],
    *,
    hedge_delay: float | None = None,
    timeout: float | None = None,
    discard: Callable[[T], Awaitable[None]] | None = None,
) -> RaceOutcome[T]:
    """Run ``factories`` as a race; the first *success* wins and every other attempt is cancelled.

    Without ``hedge_delay`` all attempts start at once. With it, the next attempt starts only when
    no success arrived ``hedge_delay`` seconds after the previous start, or at once when an attempt
    fails (a failure must not waste the delay). Losers are cancelled and awaited before returning;
    a loser that also succeeded is passed to ``discard`` (e.g. to close a stream). All failed ->
    ``AllModelsFailedError`` (errors in label order); ``timeout`` over the whole race -> ``Timeout``.
    """
    if len(labels) != len(factories) or not factories:
        raise ValueError("race_first needs as many labels as factories, at least one")
    race: _Race[T] = _Race(labels, factories)
    deadline = None if timeout is None else race.t0 + timeout
    winner: asyncio.Task[T] | None = None
    try:
        race.start_next()
        while hedge_delay is None and race.has_unstarted:
            race.start_next()
        while winner is None:
            winner = await _step(race, hedge_delay, deadline)
    finally:
        # also runs when the caller is cancelled: nothing outlives the call
        await race.cancel_all(discard, keep=winner)
    index = race.tasks[winner]
    race.attempts[index].status = "won"
    return RaceOutcome(winner.result(), race.attempts[index].label, index, race.attempts)


async def _step(race: _Race[T], hedge_delay: float | None, deadline: float | None) -> asyncio.Task[T] | None:
    """Wait for the next event (a task ends, the hedge delay or the deadline passes); return a winner or None."""
    running = race.running()
    now = race.loop.time()
    waits = []
    if hedge_delay is not None and race.has_unstarted:
        waits.append(race.last_start + hedge_delay - now)
    if deadline is not None:
        waits.append(deadline - now)
    wait_for = max(min(waits), 0.0) if waits else None
    if not running:  # only reachable when nothing is left to start
        _raise_all_failed(race)
    done, _ = await asyncio.wait(running, timeout=wait_for, return_when=asyncio.FIRST_COMPLETED)
    winner = _first_success(race, done)
    if winner is not None:
        return winner
    if deadline is not None and race.loop.time() >= deadline:
        raise Timeout(f"no attempt succeeded within {deadline - race.t0:g}s ({_summary(race)})")
    failed_now = any(not t.cancelled() and t.exception() is not None for t in done)
    if race.has_unstarted and (failed_now or not done):
        race.start_next()  # hedge delay passed, or a failure freed the slot
    elif not race.running() and not race.has_unstarted:
        _raise_all_failed(race)
    return None


def _first_success(race: _Race[T], done: Iterable[asyncio.Task[T]]) -> asyncio.Task[T] | None:
    best: asyncio.Task[T] | None = None
    for task in done:
        error = task.exception()
        index = race.tasks[task]
        if error is not None:
            race.attempts[index].status, race.attempts[index].error = "failed", error
            if not isinstance(error, Exception):
                raise error  # KeyboardInterrupt & co are not attempt failures
        elif best is None or index < race.tasks[best]:
            best = task  # ties go to the earlier-listed attempt, deterministically
    return best


def _raise_all_failed(race: _Race[T]) -> None:
    errors = [a.error for a in race.attempts if isinstance(a.error, Exception)]
    raise AllModelsFailedError(f"all {len(errors)} attempts failed: {_summary(race)}", errors)


def _summary(race: _Race[T]) -> str:
    parts = [f"{a.label}: {a.error}" for a in race.attempts if a.error is not None]
    return "; ".join(parts) or "nothing finished"


async def gather_settled(factories: Sequence[Callable[[], Awaitable[T]]]) -> list[T | BaseException]:
    """Run every factory concurrently; each slot holds its result or the ``Exception`` it raised.

    One failure never cancels the others; cancelling the caller cancels (and awaits) them all.
    """
    results: list[T | BaseException] = [None] * len(factories)  # type: ignore[list-item]

    async def settle(i: int, factory: Callable[[], Awaitable[T]]) -> None:
        try:
            results[i] = await factory()
        except Exception as exc:
            results[i] = exc

    async with asyncio.TaskGroup() as group:
        for i, factory in enumerate(factories):
            group.create_task(settle(i, factory))
    return results


async def bounded_map(
    fn: Callable[[int], Awaitable[R]],
    indices: Iterable[int],
    *,
    concurrency: int,
    on_result: Callable[[int, R | Exception], None],
    before: Callable[[int], Awaitable[None]] | None = None,
    stop_on_error: bool = False,
) -> None:
    """Call ``fn(i)`` for each index with at most ``concurrency`` calls in flight.

    A fixed pool of worker coroutines pulls indices from one shared iterator: no task per item.
    ``before(i)`` (e.g. rate pacing) is awaited before each call; ``on_result(i, value_or_error)``
    is called as each finishes. With ``stop_on_error`` the first ``Exception`` cancels everything
    and is raised. Cancelling the caller cancels and awaits every worker.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    pending = iter(indices)

    async def worker() -> None:
        for i in pending:  # next() runs between awaits, so each index goes to exactly one worker
            if before is not None:
                await before(i)
            try:
                result: R | Exception = await fn(i)
            except Exception as exc:
                if stop_on_error:
                    raise
                result = exc
            on_result(i, result)

    loop = asyncio.get_running_loop()
    workers = [loop.create_task(worker()) for _ in range(concurrency)]
    try:
        done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.wait(workers)
    for task in done:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error
