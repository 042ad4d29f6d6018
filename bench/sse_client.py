"""A lean HTTP/1.1 client for many concurrent SSE streams: the slow-stream scenario's measuring instrument.

It shares core 0 with the emulator, and 500 streams of 20 events a second through aiohttp cost that core
about as much CPU as the emulator itself: the core saturated and its own queueing showed up as gaps in
every target's streams, the direct row included. Here each connection is a bare ``asyncio.Protocol`` with
httptools' C parser, stamping the arrival time of each read and counting the ``data:`` events in it, so
the instrument costs a fraction of that and measures the target more than itself.

Each stream opens its own connection and closes it at the end, as each run's fresh aiohttp session did.
"""

from __future__ import annotations

import asyncio
import time
from typing import cast
from urllib.parse import urlsplit

import httptools

__all__ = ["SSEClient", "StreamResult"]


class StreamResult:
    """One stream: when each ``data:`` event arrived, whether it ended with ``[DONE]``, the status."""

    __slots__ = ("arrivals", "done", "status", "t0", "ttft")

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.done = False
        self.status = 0
        self.t0 = time.perf_counter()
        self.ttft = -1.0


class _Connection(asyncio.Protocol):
    """One connection, one request."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._result: StreamResult | None = None
        self._finished: asyncio.Future[None] | None = None
        self._now = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self._now = time.perf_counter()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._end(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        ended = self._result is not None and self._result.done  # a body delimited by the close
        self._end(None if ended else ConnectionError("connection closed mid-response"))

    # httptools callbacks
    def on_status(self, status: bytes) -> None:
        if self._result is not None:
            self._result.status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        result = self._result
        if result is None:
            return
        events = body.count(b"data:")
        if events:
            now = self._now
            if result.ttft < 0 and b'"content"' in body:
                result.ttft = (now - result.t0) * 1000
            result.arrivals.extend([now] * events)
        if b"[DONE]" in body:
            result.done = True

    def on_message_complete(self) -> None:
        self._end(None)

    def _end(self, exc: Exception | None) -> None:
        finished = self._finished
        if finished is not None and not finished.done():
            if exc is None:
                finished.set_result(None)
            else:
                finished.set_exception(exc)

    async def request(self, raw: bytes) -> StreamResult:
        assert self.transport is not None
        self._result = result = StreamResult()
        self._finished = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        try:
            await self._finished
        finally:
            self._result = self._finished = None
            self.transport.close()
        return result


class SSEClient:
    """POSTs one JSON body as many concurrent streams to one URL."""

    def __init__(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        head = [
            f"POST {path} HTTP/1.1",
            f"Host: {parts.netloc}",
            "Accept: text/event-stream",
            f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")),
        ]
        self._raw = ("\r\n".join(head) + "\r\n\r\n").encode() + body

    async def stream(self) -> StreamResult:
        """One stream, read to its end (``ConnectionError`` if the connection breaks first)."""
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Connection, self._host, self._port)
        return await conn.request(self._raw)
