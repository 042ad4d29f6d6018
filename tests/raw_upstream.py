"""A scriptable HTTP/1.1 upstream on 127.0.0.1 built on raw asyncio streams, for conditions the emulator cannot
produce exactly (precise retry timing, a silent socket, a body cut mid-way) and for observing client disconnects.

Each test passes a handler ``async (Received, Conn) -> None``; every response is sent with ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

IO_TIMEOUT = 10.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return orjson.loads(self.body)


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: RawUpstream) -> None:
        self.reader = reader
        self.writer = writer
        self.upstream = upstream

    async def respond(
        self, status: int, body: bytes | dict[str, Any] | list[Any], headers: dict[str, str] | None = None
    ) -> None:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        head = {"Content-Type": "application/json", "Content-Length": str(len(raw)), **(headers or {})}
        await self.send_head(status, head)
        self.writer.write(raw)
        await self.writer.drain()

    async def send_head(self, status: int, headers: dict[str, str]) -> None:
        lines = [f"HTTP/1.1 {status} X", "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()

    async def start_sse(self) -> None:
        """Headers of an SSE body that lasts until the connection closes."""
        await self.send_head(200, {"Content-Type": "text/event-stream"})

    async def send(self, raw: bytes) -> None:
        self.writer.write(raw)
        await self.writer.drain()

    async def wait_client_gone(self, timeout: float = IO_TIMEOUT) -> bool:
        """Wait until the client closes its side; True if it did within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except (ConnectionError, OSError):
            pass
        self.upstream.disconnects += 1
        self.upstream.disconnected.set()
        return True


Handler = Callable[[Received, Conn], Awaitable[None]]


class RawUpstream:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Received] = []
        self.disconnects = 0
        self.disconnected = asyncio.Event()
        self.got_request = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    @property
    def openai_base(self) -> str:
        return self.url + "/v1"

    async def start(self) -> RawUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=IO_TIMEOUT)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            async with asyncio.timeout(IO_TIMEOUT * 3):
                received = await _read_request(reader)
                if received is None:
                    return
                self.requests.append(received)
                self.got_request.set()
                await self.handler(received, Conn(reader, writer, self))
        except (ConnectionError, OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, path, _ = request_line.split(" ", 2)
    headers = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Received(method, path, headers, body)


def completion_body(content: str = "hi") -> dict[str, Any]:
    return {
        "id": "chatcmpl-raw",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def chunk_event(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    chunk = {
        "id": "chatcmpl-raw",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[RawUpstream]:
    upstream = await RawUpstream(handler).start()
    try:
        yield upstream
    finally:
        await upstream.close()


@contextlib.contextmanager
def serve_in_thread(handler: Handler) -> Iterator[RawUpstream]:
    """The same server on its own loop thread, for tests of blocking code."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="raw-upstream", daemon=True)
    thread.start()
    try:

        async def start() -> RawUpstream:
            return await RawUpstream(handler).start()

        upstream = asyncio.run_coroutine_threadsafe(start(), loop).result(IO_TIMEOUT)
        try:
            yield upstream
        finally:
            asyncio.run_coroutine_threadsafe(upstream.close(), loop).result(IO_TIMEOUT * 4)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(IO_TIMEOUT)
        loop.close()
