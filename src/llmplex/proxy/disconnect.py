"""Client disconnects: stop upstream work as soon as the client that asked for it leaves.

The request body is read before the upstream call starts, so while the call runs the only message
``receive()`` can yield is ``http.disconnect``. Waiting for it is cancel-safe (the server keeps the
message until it is consumed), so a response that later watches ``receive()`` itself still sees it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.types import Message, Receive

__all__ = ["ClientDisconnected", "until_disconnect", "wait_disconnect"]

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client went away before the answer was ready; the upstream call was cancelled."""


async def wait_disconnect(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


# Most upstream answers on the hot path take milliseconds; an LLM call that matters takes seconds.
# Watching starts after this delay, so fast calls cost a timer instead of a task (still < 100 ms to notice).
WATCH_AFTER = 0.02


async def until_disconnect(work: Awaitable[T], receive: Receive, discard: Callable[[T], None] | None = None) -> T:
    """The result of ``work``; if the client leaves first, ``work`` is cancelled and ``ClientDisconnected`` raised.

    ``work`` runs in the calling task. A watcher task, started ``WATCH_AFTER`` seconds in, cancels it
    when the client leaves: one timer per fast request, one extra task per slow one.
    ``discard`` releases a result that was ready just as the client left (e.g. closes a stream).
    """
    current = asyncio.current_task()
    assert current is not None
    loop = asyncio.get_running_loop()
    left = False
    watcher: asyncio.Task[None] | None = None

    async def watch() -> None:
        nonlocal left
        await wait_disconnect(receive)
        left = True
        current.cancel()

    def start() -> None:
        nonlocal watcher
        watcher = loop.create_task(watch())

    timer = loop.call_later(WATCH_AFTER, start)
    try:
        result = await work
    except asyncio.CancelledError:
        if left and current.uncancel() == 0:
            raise ClientDisconnected from None
        raise
    finally:
        timer.cancel()
        if watcher is not None and not watcher.done():
            watcher.cancel()
            _pending.add(watcher)
            watcher.add_done_callback(_pending.discard)
    if left:
        # the client left just as the answer was ready: release it, do not return it
        if discard is not None:
            discard(result)
        raise ClientDisconnected
    return result


# cancelled watchers finish on the next loop iteration; keep them referenced until then
_pending: set[asyncio.Task[None]] = set()
