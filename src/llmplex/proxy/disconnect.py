"""Client disconnects: stop upstream work as soon as the client that asked for it leaves.

The request body is read before the upstream call starts, so while the call runs the only message
``receive()`` can yield is ``http.disconnect``. Waiting for it is cancel-safe (the server keeps the
message until it is consumed), so a response that later watches ``receive()`` itself still sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
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


async def until_disconnect(work: Awaitable[T], receive: Receive, discard: Callable[[T], None] | None = None) -> T:
    """The result of ``work``; if the client leaves first, ``work`` is cancelled and ``ClientDisconnected`` raised.

    ``discard`` releases a result that was ready just as the client left (e.g. closes a stream).
    """
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(wait_disconnect(receive))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if watch.cancelled() or not watch.done() or watch.exception() is not None:
        return task.result()
    # the client left: a result that raced the disconnect is released, not returned
    if not task.cancelled() and task.exception() is None and discard is not None:
        discard(task.result())
    raise ClientDisconnected
