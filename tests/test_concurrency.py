"""The LLM-agnostic primitives, with plain coroutines (no network)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from llmplex._concurrency import bounded_map, gather_settled, race_first
from llmplex.exceptions import AllModelsFailedError, RateLimitError, ServiceUnavailableError, Timeout


class Probe:
    """Records which attempts started, finished, and were cancelled."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.finished: list[str] = []

    def ok(self, label: str, delay: float, value: str | None = None) -> Callable[[], Awaitable[str]]:
        async def run() -> str:
            self.started.append(label)
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                self.cancelled.append(label)
                raise
            self.finished.append(label)
            return value or label

        return run

    def fail(self, label: str, delay: float, error: Exception) -> Callable[[], Awaitable[str]]:
        async def run() -> str:
            self.started.append(label)
            await asyncio.sleep(delay)
            raise error

        return run


async def test_race_fastest_success_wins_and_losers_are_cancelled_before_return() -> None:
    probe = Probe()
    t0 = time.perf_counter()
    outcome = await race_first(["slow", "fast"], [probe.ok("slow", 5.0), probe.ok("fast", 0.02)])
    elapsed = time.perf_counter() - t0
    assert outcome.value == "fast" and outcome.winner == "fast" and outcome.winner_index == 1
    assert elapsed < 0.5
    assert probe.cancelled == ["slow"]  # already cancelled and awaited when race_first returned
    statuses = {a.label: a.status for a in outcome.attempts}
    assert statuses == {"slow": "cancelled", "fast": "won"}
    fast = outcome.attempts[1]
    assert fast.latency_ms is not None and 15 <= fast.latency_ms < 400


async def test_race_fast_error_never_wins() -> None:
    probe = Probe()
    outcome = await race_first(
        ["err", "ok"], [probe.fail("err", 0.0, RateLimitError("slow down")), probe.ok("ok", 0.05)]
    )
    assert outcome.winner == "ok"
    assert outcome.attempts[0].status == "failed"
    assert isinstance(outcome.attempts[0].error, RateLimitError)


async def test_race_all_failed_is_an_exception_group_in_label_order() -> None:
    probe = Probe()
    errors = [RateLimitError("a"), ServiceUnavailableError("b")]
    with pytest.raises(AllModelsFailedError) as info:
        await race_first(["a", "b"], [probe.fail("a", 0.03, errors[0]), probe.fail("b", 0.0, errors[1])])
    assert list(info.value.exceptions) == errors
    caught: list[BaseException] = []
    try:
        await race_first(["a", "b"], [probe.fail("a", 0.0, errors[0]), probe.fail("b", 0.0, errors[1])])
    except* RateLimitError as group:
        caught.extend(group.exceptions)
    except* ServiceUnavailableError:
        pass
    assert caught == [errors[0]]


async def test_hedge_next_not_started_when_first_answers_within_delay() -> None:
    probe = Probe()
    outcome = await race_first(
        ["primary", "backup"], [probe.ok("primary", 0.02), probe.ok("backup", 0.0)], hedge_delay=0.3
    )
    assert outcome.winner == "primary"
    assert probe.started == ["primary"]
    assert outcome.attempts[1].status == "not_started" and outcome.attempts[1].started_at is None


async def test_hedge_starts_backup_after_the_delay() -> None:
    probe = Probe()
    t0 = time.perf_counter()
    outcome = await race_first(
        ["primary", "backup"], [probe.ok("primary", 5.0), probe.ok("backup", 0.02)], hedge_delay=0.1
    )
    elapsed = time.perf_counter() - t0
    assert outcome.winner == "backup"
    assert 0.1 <= elapsed < 0.6
    started_at = outcome.attempts[1].started_at
    assert started_at is not None and 0.09 <= started_at < 0.4
    assert probe.cancelled == ["primary"]


async def test_hedge_failure_starts_the_next_at_once() -> None:
    probe = Probe()
    t0 = time.perf_counter()
    outcome = await race_first(
        ["bad", "good"], [probe.fail("bad", 0.01, RateLimitError("x")), probe.ok("good", 0.01)], hedge_delay=2.0
    )
    assert outcome.winner == "good"
    assert time.perf_counter() - t0 < 0.5  # did not sit out the 2 s delay


async def test_race_timeout_bounds_the_whole_race() -> None:
    probe = Probe()
    t0 = time.perf_counter()
    with pytest.raises(Timeout):
        await race_first(["a", "b"], [probe.ok("a", 5.0), probe.ok("b", 5.0)], timeout=0.1)
    assert time.perf_counter() - t0 < 0.5
    assert sorted(probe.cancelled) == ["a", "b"]


async def test_race_late_success_of_a_loser_is_discarded() -> None:
    discarded: list[str] = []

    async def discard(value: str) -> None:
        discarded.append(value)

    async def instant(value: str) -> str:
        return value

    outcome = await race_first(["a", "b"], [lambda: instant("a"), lambda: instant("b")], discard=discard)
    # both finish in the same loop iteration: the earlier-listed wins, the other is released
    assert outcome.winner == "a"
    assert discarded == ["b"]


async def test_race_caller_cancellation_cancels_every_attempt() -> None:
    probe = Probe()
    task = asyncio.create_task(race_first(["a", "b"], [probe.ok("a", 5.0), probe.ok("b", 5.0)]))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(probe.cancelled) == ["a", "b"]


async def test_gather_settled_keeps_order_and_failures_do_not_cancel() -> None:
    probe = Probe()
    err = RateLimitError("x")
    results = await gather_settled([probe.ok("a", 0.05), probe.fail("b", 0.0, err), probe.ok("c", 0.01)])
    assert results == ["a", err, "c"]
    assert probe.cancelled == []


async def test_gather_settled_runs_all_concurrently() -> None:
    barrier = asyncio.Barrier(5)

    async def wait_all() -> int:
        async with asyncio.timeout(2):
            return await barrier.wait()

    results = await gather_settled([wait_all for _ in range(5)])
    assert sorted(results) == [0, 1, 2, 3, 4]  # type: ignore[type-var]


async def test_bounded_map_respects_concurrency_and_aligns_results() -> None:
    in_flight = peak = 0

    async def work(i: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (i % 3))
        in_flight -= 1
        if i % 7 == 0:
            raise ValueError(i)
        return i * 2

    results: dict[int, object] = {}
    await bounded_map(work, range(100), concurrency=8, on_result=results.__setitem__)
    assert peak == 8
    assert len(results) == 100
    for i, value in results.items():
        if i % 7 == 0:
            assert isinstance(value, ValueError) and value.args == (i,)
        else:
            assert value == i * 2


async def test_bounded_map_stop_on_error_cancels_the_rest() -> None:
    cancelled = 0

    async def work(i: int) -> int:
        nonlocal cancelled
        if i == 3:
            raise KeyError(i)
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return i

    t0 = time.perf_counter()
    with pytest.raises(KeyError):
        await bounded_map(work, range(10), concurrency=4, on_result=lambda i, r: None, stop_on_error=True)
    assert time.perf_counter() - t0 < 1
    assert cancelled == 3


async def test_bounded_map_calls_before_hook_per_item() -> None:
    seen: list[int] = []

    async def before(i: int) -> None:
        seen.append(i)

    async def work(i: int) -> int:
        return i

    await bounded_map(work, [5, 6, 7], concurrency=10, on_result=lambda i, r: None, before=before)
    assert seen == [5, 6, 7]
