"""One request/response on raw ASGI, with real client-disconnect detection.

Bytes written without time passing in between are coalesced into one ``send``; whenever the
script waits (``pause``), pending bytes are flushed first, so each event reaches the client when
it is due. While waiting, a watcher task listens for ``http.disconnect`` (uvicorn delivers it as
soon as the socket closes), so a client that gives up is noticed at once, not at the next write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ClientGone", "Exchange"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ClientGone(Exception):
    """The client closed the connection before the response was complete."""


class Exchange:
    __slots__ = ("_buffer", "_receive", "_send", "_sleeper", "_watcher")

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._buffer: list[bytes] = []
        self._watcher: asyncio.Task[None] | None = None
        self._sleeper: asyncio.Future[None] | None = None  # the pause in progress; the watcher ends it early

    async def read_body(self) -> bytes:
        parts = []
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(parts)

    async def pause(self, seconds: float) -> None:
        """Wait, flushing what is pending first; raise ClientGone as soon as the client leaves."""
        if seconds <= 0:
            return
        await self._flush()
        watcher = self._watch()
        if watcher.done():
            raise ClientGone
        # a plain timer and future, not asyncio.wait(): a slow stream pauses once per chunk, and the
        # emulator shares its core with the benchmark clients measuring those pauses
        loop = asyncio.get_running_loop()
        self._sleeper = sleeper = loop.create_future()
        timer = loop.call_later(seconds, _wake, sleeper)
        try:
            await sleeper
        finally:
            timer.cancel()
            self._sleeper = None
        if watcher.done():
            raise ClientGone

    async def until_gone(self) -> None:
        """Send nothing more; return (by raising ClientGone) only when the client leaves."""
        await self._flush()
        await self._watch()
        raise ClientGone

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self._check()
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    def write(self, data: bytes) -> None:
        if data:
            self._buffer.append(data)

    async def push(self, data: bytes) -> None:
        """Send ``data`` now (waits while the client does not read: uvicorn applies backpressure).

        Raises ``ClientGone`` once the client has left; yields to the loop each time, so an endless
        loop of pushes starves nobody.
        """
        self._watch()
        self.write(data)
        await self._flush()
        await asyncio.sleep(0)

    async def finish(self, data: bytes = b"") -> None:
        self.write(data)
        self._check()
        body = b"".join(self._buffer)
        self._buffer.clear()
        await self._send({"type": "http.response.body", "body": body, "more_body": False})

    async def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """A whole answer at once (``content-length`` is added here)."""
        await self.start(status, [*headers, (b"content-length", str(len(body)).encode())])
        await self.finish(body)

    async def abort(self) -> None:
        """Flush, then stop without completing the body: the server drops the connection."""
        await self._flush()

    def close(self) -> None:
        if self._watcher is not None and not self._watcher.done():
            self._watcher.cancel()

    async def _flush(self) -> None:
        if self._buffer:
            self._check()
            body = b"".join(self._buffer)
            self._buffer.clear()
            await self._send({"type": "http.response.body", "body": body, "more_body": True})

    def _check(self) -> None:
        if self._watcher is not None and self._watcher.done():
            raise ClientGone

    def _watch(self) -> asyncio.Task[None]:
        if self._watcher is None:
            self._watcher = asyncio.ensure_future(self._wait_for_disconnect())
        return self._watcher

    async def _wait_for_disconnect(self) -> None:
        # the body was read in full, so the next message can only be the disconnect
        try:
            while True:
                try:
                    message = await self._receive()
                except Exception:  # a broken connection is a departed client too
                    return
                if message["type"] == "http.disconnect":
                    return
        finally:
            if self._sleeper is not None:
                _wake(self._sleeper)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
