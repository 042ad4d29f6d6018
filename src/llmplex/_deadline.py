"""``ReadDeadline``: a timeout on each of many consecutive reads, for one timer per timeout period.

``asyncio.timeout()`` arms and cancels a timer around every read (about 5 µs); a stream relay that
reads thousands of chunks a second pays that on each one. Here a read only moves a deadline
forward; one timer checks it when it fires and re-arms itself at the newer deadline if it moved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["ReadDeadline"]

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
        task = asyncio.current_task()
        assert task is not None
        loop = task.get_loop()
        deadline = loop.time() + timeout
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
