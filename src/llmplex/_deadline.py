"""Timeouts cheaper than ``asyncio.timeout()``, which arms and cancels a timer on every use (about 5 µs).

- ``ReadDeadline``: a deadline over many consecutive reads of one stream, moved by the caller (per read with
  ``run``, or only when the stream makes progress with ``run_until``); one timer checks it when it fires
  and re-arms itself if the deadline moved.
- ``Deadlines``: one timeout per concurrent task (each request of a client or proxy) on one shared timer;
  entering and leaving are dictionary operations.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["Deadlines", "ReadDeadline"]

T = TypeVar("T")


class ReadDeadline:
    """Bounds each ``run(awaitable, timeout)`` call; one instance per sequence of reads (one stream)."""

    __slots__ = ("_deadline", "_expired", "_handle", "_reader")

    def __init__(self) -> None:
        self._deadline = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._reader: asyncio.Task[Any] | None = None
        self._expired = False

    async def run(self, awaitable: Awaitable[T], timeout: float) -> T:
        """``await awaitable``; ``TimeoutError`` if it has not finished ``timeout`` seconds from now."""
        return await self.run_until(awaitable, asyncio.get_running_loop().time() + timeout)

    async def run_until(self, awaitable: Awaitable[T], deadline: float) -> T:
        """``await awaitable``; ``TimeoutError`` if it has not finished by ``deadline`` (the loop's clock).

        Calls with the same deadline (reads that made no progress) leave the timer as it is.
        """
        task = asyncio.current_task()
        assert task is not None
        loop = task.get_loop()
        self._deadline = deadline
        handle = self._handle
        if handle is None or handle.when() > deadline:  # no timer yet, or one that would fire too late
            if handle is not None:
                handle.cancel()
            self._handle = loop.call_at(deadline, self._check)
        self._reader = task
        self._expired = False
        try:
            return await awaitable
        except asyncio.CancelledError:
            if self._expired and task.uncancel() == 0:
                raise TimeoutError from None
            raise  # cancelled by someone else (too)
        finally:
            self._reader = None

    def _check(self) -> None:
        self._handle = None
        reader = self._reader
        if reader is None:
            return  # between reads: the next read arms a timer
        loop = reader.get_loop()
        if loop.time() >= self._deadline:
            self._expired = True
            reader.cancel()
        else:
            self._handle = loop.call_at(self._deadline, self._check)

    def cancel(self) -> None:
        """Drop the timer (the reads are over)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()


class Deadlines:
    """Timeouts for many concurrent tasks on one timer (``asyncio.timeout`` arms and cancels one per call).

    ``enter(task, when)`` before the bounded work, ``leave(task)`` after it, in ``finally``; when a task's
    deadline passes first, the task is cancelled and ``leave`` returns True, so the caller turns that
    ``CancelledError`` into its timeout error (after ``task.uncancel()``, as ``asyncio.timeout`` does).
    """

    __slots__ = ("_due", "_expired", "_handle", "_loop")

    def __init__(self) -> None:
        self._due: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def enter(self, task: asyncio.Task[Any], when: float) -> None:
        loop = task.get_loop()
        if loop is not self._loop:  # first use, or a new event loop: the old one's timer and tasks are gone
            if self._handle is not None:
                self._handle.cancel()
            self._handle, self._loop = None, loop
            self._due.clear()
            self._expired.clear()
        self._due[task] = when
        handle = self._handle
        if handle is None or handle.when() > when:
            if handle is not None:
                handle.cancel()
            self._handle = loop.call_at(when, self._fire, loop)

    def leave(self, task: asyncio.Task[Any]) -> bool:
        """Forget ``task``; True when it was cancelled because its deadline passed."""
        self._due.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handle = None
        now = loop.time()
        nearest = math.inf
        for task, when in list(self._due.items()):
            if when <= now:
                del self._due[task]
                self._expired.add(task)
                task.cancel()
            elif when < nearest:
                nearest = when
        if nearest != math.inf:
            self._handle = loop.call_at(nearest, self._fire, loop)
