"""The HTTP/1.1 connection layer under the app: uvicorn's httptools protocol with bounds on request heads.

uvicorn bounds an idle kept-alive connection (``timeout_keep_alive``) but nothing else before a request
reaches the app: a connection that never sends a byte, or sends its headers one byte at a time, stays
open forever (slowloris: a few hundred such sockets exhaust the file descriptors), and httptools buffers a
header of any size before the app could refuse it (a 96 MB header cost ~326 MB and stalled every other
connection). ``BoundedHttpToolsProtocol`` adds both bounds, per connection, before anything is buffered
in the app:

- ``header_timeout``: a request's head (request line and headers) must be complete within this many
  seconds of the connection opening or of the request's first byte; otherwise the connection is closed
  (with a 408 when part of a request arrived).
- ``max_header_bytes``: a head larger than this is refused with a 431 and the connection closed; at most
  this plus one socket read is ever buffered.

The settings travel on the uvicorn config (``ServerConfig``) so worker processes get them too.
"""

from __future__ import annotations

import asyncio
import http
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

__all__ = [
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_KEEPALIVE_TIMEOUT",
    "DEFAULT_MAX_HEADER_BYTES",
    "BoundedHttpToolsProtocol",
    "ServerConfig",
]

DEFAULT_HEADER_TIMEOUT = 10.0  # seconds; real clients send their whole head in one packet
DEFAULT_MAX_HEADER_BYTES = 64 * 1024  # the app refuses more than 32 KiB of headers with its own 431
DEFAULT_KEEPALIVE_TIMEOUT = 5  # uvicorn's default, seconds an idle kept-alive connection stays open
_LINGER = 2.0  # seconds a refused connection's input is read and dropped before it is closed


class ServerConfig(uvicorn.Config):
    """``uvicorn.Config`` plus the head bounds (a module-level class: it is pickled for worker processes)."""

    def __init__(
        self,
        app: Any,
        *,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout = float(getattr(config, "header_timeout", DEFAULT_HEADER_TIMEOUT))
        self.max_header_bytes = int(getattr(config, "max_header_bytes", DEFAULT_MAX_HEADER_BYTES))
        self.in_head = True  # between requests or inside a request's head: what the bounds apply to
        self.head_bytes = 0
        self.head_started = False  # a byte of the current head arrived
        self.head_timer: asyncio.TimerHandle | None = None
        # when the current head's clock started (loop time); None: no head pending. The timer is not moved per
        # request (a call_later and a cancel per request cost more than the rest of the bounds): when it fires
        # it compares with this and re-arms for what is left
        self.head_since: float | None = None
        self.discarding = False  # refused: what the client still sends is read and dropped until we close

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_clock()  # a connection that never sends a request is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.discarding:
            return
        if self.in_head:
            self.head_bytes += len(data)
            self.head_started = True
            if self.head_since is None:  # the first byte of a request on a kept-alive connection
                self._start_clock()
        super().data_received(data)
        # checked after feeding: the same read may also complete the head (then in_head is False)
        if self.in_head and self.head_bytes > self.max_header_bytes and not self.transport.is_closing():
            self._refuse(431, f"Request headers too large: the limit is {self.max_header_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_started = True
        if self.head_since is None:  # a pipelined request, begun in the same read as the previous one ended
            self._start_clock()

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_since = None  # the timer stays; it finds no head pending and lapses
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_head, self.head_bytes, self.head_started = True, 0, False

    def _start_clock(self) -> None:
        self.head_since = self.loop.time()
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or not self.in_head or self.head_since is None:
            return
        left = self.head_since + self.header_timeout - self.loop.time()
        if left > 0:  # this head began after the timer was set (the next request on a kept-alive connection)
            self.head_timer = self.loop.call_later(left, self._head_timed_out)
            return
        if self._responding():
            self._start_clock()  # a pipelined head behind a response still being sent: bounded by that response
            return
        if self.head_started:
            self._refuse(408, f"Request headers not received within {self.header_timeout:g} seconds")
        else:
            self.transport.close()  # nothing was asked: nothing to answer

    def _responding(self) -> bool:
        cycle: RequestResponseCycle | None = self.cycle  # uvicorn types it as always set; it is None at first
        return cycle is not None and not cycle.response_complete

    def _refuse(self, status: int, message: str) -> None:
        """An OpenAI-format error and ``Connection: close``; never in the middle of another response."""
        self._disarm()
        if not self._responding():
            error = {"message": message, "type": "invalid_request_error", "param": None, "code": str(status)}
            body = orjson.dumps({"error": error})
            phrase = http.HTTPStatus(status).phrase
            head = [f"HTTP/1.1 {status} {phrase}".encode()]
            head += [name + b": " + value for name, value in self.server_state.default_headers]
            head += [b"content-type: application/json", b"content-length: %d" % len(body), b"connection: close"]
            self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        if self.transport.can_write_eof():
            # a lingering close: closing with unread input would reset the connection and the client could
            # lose the answer; so half-close, drop the rest of the request for a moment, then close
            self.transport.write_eof()
            self.discarding = True
            self.loop.call_later(_LINGER, self.transport.close)
        else:
            self.transport.close()
