"""Reading a non-streaming response body under two caps: one per body, one for all bodies read at once.

``max_response_bytes`` bounds one body (counted after decompression, so a gzip bomb stops there too).
That alone still lets N concurrent hostile answers hold N x the cap while they are being read (the
hostile bench: 4 clients x 32 MiB over a 65 MiB idle proxy = ~195 MiB RSS). ``BodyBudget`` bounds the
sum: bytes of bodies being read, past the first ``FREE_PER_BODY`` of each, are charged to one budget per
``Transport`` (the proxy has one), and a body that would overdraw it fails at once with a
``StreamError`` naming ``max_buffered_response_bytes``. The per-body allowance keeps the budget
invisible to ordinary answers (a few KiB each): only large bodies compete for it. A body read while no
other is charged may pass the budget, up to its own cap (embeddings have a larger one than chat).

aiohttp is imported by the caller (``_transport``); no aiohttp type escapes these functions.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from llmplex._malloc_trim import MemoryReturner
from llmplex.exceptions import StreamError

if TYPE_CHECKING:
    import aiohttp

    from llmplex.providers.base import ProviderAdapter

__all__ = ["ERROR_BODY_LIMIT", "FREE_PER_BODY", "BodyBudget", "read_body", "read_error_body"]

# An error body is only read for its message: past this size it is dropped, not buffered.
ERROR_BODY_LIMIT = 1024 * 1024
# A body read without suspending would hold the event loop: yield after this many bytes.
YIELD_EVERY = 1024 * 1024
# Bytes of each body not charged to the shared budget: ordinary answers never meet it.
FREE_PER_BODY = 1024 * 1024


class BodyBudget:
    """Bytes (past ``FREE_PER_BODY`` each) of the bodies being read right now, against ``limit``."""

    __slots__ = ("limit", "returner", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.returner = MemoryReturner()

    def take(self, count: int, own: int = 0) -> bool:
        """Charge ``count`` more bytes to a body already charged ``own``; False if that would overdraw.

        A body read while no other one is charged may pass ``limit`` (up to its own cap): an embeddings
        answer is allowed more than the budget, and refusing the only large body protects nothing.
        """
        if self.used + count > self.limit and self.used > own:
            return False
        self.used += count
        return True

    def give_back(self, count: int) -> None:
        """A body's charge, once it is read or refused: its memory is garbage now or soon (``_malloc_trim``)."""
        self.used -= count
        if count:
            self.returner.freed(count)


async def read_body(
    resp: aiohttp.ClientResponse, limit: int, budget: BodyBudget, adapter: ProviderAdapter, model: str
) -> bytes:
    """The whole body, or ``StreamError`` as soon as it passes ``limit`` bytes (compressed or not) or ``budget``."""
    length = resp.content_length
    if length is not None and length > limit:
        raise _too_large(limit, adapter, model, f"announced {length} bytes")
    charged = 0
    parts: list[bytes] = []
    try:
        if length is not None and not resp.headers.get("Content-Encoding"):
            # exactly ``length`` bytes will be read: the common, fast case; charged before reading
            charged = max(length - FREE_PER_BODY, 0)
            if charged and not budget.take(charged):  # nothing charged yet: refused only beside others
                charged = 0
                raise _over_budget(budget, adapter, model, length)
            return await resp.read()
        content = resp.content
        size = 0
        next_yield = YIELD_EVERY
        while True:
            data = await content.readany()  # decompressed in bounded steps by aiohttp, counted here
            if not data:
                break
            size += len(data)
            if size > limit or content.total_raw_bytes > limit:
                raise _too_large(limit, adapter, model, f"over {size} bytes")
            due = size - FREE_PER_BODY - charged
            if due > 0:
                if not budget.take(due, charged):
                    raise _over_budget(budget, adapter, model, size)
                charged += due
            parts.append(data)
            if size >= next_yield:
                # readany() does not suspend while data is buffered: a fast or compressed body would hold the
                # loop until the whole of it is read (a gzip bomb: ~0.1 s per 32 MiB); let others run
                next_yield = size + YIELD_EVERY
                await asyncio.sleep(0)
        resp.release()
        return b"".join(parts)
    finally:
        budget.give_back(charged)
        parts.clear()  # a refused body is freed now, not when the exception's traceback is


async def read_error_body(resp: aiohttp.ClientResponse) -> bytes:
    """An error answer's body for its message; b"" when it is unreadable or larger than ``ERROR_BODY_LIMIT``."""
    import aiohttp

    try:
        length = resp.content_length
        if length is not None and length > ERROR_BODY_LIMIT:
            raise OverflowError
        parts: list[bytes] = []
        size = 0
        while data := await resp.content.readany():
            size += len(data)
            if size > ERROR_BODY_LIMIT:
                raise OverflowError
            parts.append(data)
    except (OverflowError, aiohttp.ClientError, OSError):
        resp.close()
        return b""
    except BaseException:
        resp.close()
        raise
    resp.release()
    return b"".join(parts)


def _too_large(limit: int, adapter: ProviderAdapter, model: str, what: str) -> StreamError:
    return StreamError(
        f"response body from {adapter.name} exceeds {limit} bytes (max_response_bytes; "
        f"max_embedding_response_bytes for embeddings): {what}",
        provider=adapter.name,
        model=model,
    )


def _over_budget(budget: BodyBudget, adapter: ProviderAdapter, model: str, size: int) -> StreamError:
    return StreamError(
        f"response body from {adapter.name} refused at {size} bytes: the bodies being read at once would pass "
        f"max_buffered_response_bytes ({budget.limit}, shared by all requests)",
        provider=adapter.name,
        model=model,
    )
