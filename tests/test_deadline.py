"""``ReadDeadline``: a per-read timeout that moves a deadline instead of arming a timer per read."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from llmplex._deadline import Deadlines, ReadDeadline


async def test_each_read_gets_the_full_timeout_and_timers_are_not_armed_per_read() -> None:
    loop = asyncio.get_running_loop()
    armed = 0
    original = loop.call_at

    def counting_call_at(when: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        nonlocal armed
        armed += 1
        return original(when, callback, *args, **kwargs)

    deadline = ReadDeadline()
    loop.call_at = counting_call_at  # type: ignore[method-assign]
    try:
        started = time.monotonic()
        for _ in range(60):  # 60 reads of 10 ms: 0.6 s in all, twice the per-read timeout
            assert await deadline.run(asyncio.sleep(0.01, result="chunk"), 0.3) == "chunk"
        assert time.monotonic() - started > 0.3
    finally:
        loop.call_at = original  # type: ignore[method-assign]
        deadline.cancel()
    # one timer per timeout period (plus asyncio.sleep's own), not one per read
    assert armed - 60 <= 8


async def test_a_stalled_read_times_out_in_time() -> None:
    deadline = ReadDeadline()
    await deadline.run(asyncio.sleep(0.01), 0.5)  # an earlier read leaves a timer for a later deadline
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await deadline.run(asyncio.sleep(10), 0.1)
    assert 0.09 <= time.monotonic() - started < 1.0
    # the task is usable afterwards: the timeout's cancellation was consumed
    assert await deadline.run(asyncio.sleep(0, result=1), 0.1) == 1
    deadline.cancel()


async def test_someone_elses_cancel_stays_a_cancel() -> None:
    deadline = ReadDeadline()
    task = asyncio.ensure_future(deadline.run(asyncio.sleep(10), 5.0))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadline.cancel()


async def test_a_cancelled_deadline_never_fires() -> None:
    deadline = ReadDeadline()
    await deadline.run(asyncio.sleep(0), 0.05)
    deadline.cancel()
    await asyncio.sleep(0.1)  # past the old deadline: nothing is cancelled, nothing raises
    assert await deadline.run(asyncio.sleep(0.01, result="ok"), 1.0) == "ok"
    deadline.cancel()


async def test_deadlines_time_out_only_the_late_tasks_on_one_timer() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines()

    async def bounded(seconds: float, timeout: float) -> str:
        task = asyncio.current_task()
        assert task is not None
        deadlines.enter(task, loop.time() + timeout)
        try:
            await asyncio.sleep(seconds)
            return "done"
        except asyncio.CancelledError:
            if deadlines.leave(task) and task.uncancel() == 0:
                return "timed out"
            raise
        finally:
            deadlines.leave(task)

    started = time.monotonic()
    results = await asyncio.gather(*(bounded(0.3 if i % 4 == 0 else 0.01, 0.15) for i in range(40)))
    assert results.count("timed out") == 10 and results.count("done") == 30
    assert time.monotonic() - started < 1.0
    # an outside cancel stays a cancel
    task = asyncio.ensure_future(bounded(10, 5))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_deadlines_follow_a_new_event_loop() -> None:
    """A client used on one loop, then another (the first closed): the timer must be re-armed on the new one."""
    deadlines = Deadlines()

    async def bounded(seconds: float, timeout: float) -> str:
        task = asyncio.current_task()
        assert task is not None
        deadlines.enter(task, task.get_loop().time() + timeout)
        try:
            await asyncio.sleep(seconds)
            return "done"
        except asyncio.CancelledError:
            if deadlines.leave(task) and task.uncancel() == 0:
                return "timed out"
            raise
        finally:
            deadlines.leave(task)

    assert asyncio.run(bounded(0.01, 30)) == "done"  # leaves a timer armed on the first loop
    started = time.monotonic()
    assert asyncio.run(bounded(10, 0.1)) == "timed out"
    assert time.monotonic() - started < 2.0
