"""An SSE answer written from an async iterator of ready-made bytes (text-completion chunks, Anthropic events).

The chat path has its own ``EventStreamResponse`` (it batches ``CompletionStream`` chunks); this one serves
the endpoints beyond chat. As there, the upstream is closed when the stream ends, fails or the client
leaves (a watcher cancels the pump at once, even while the upstream is silent), and a failure after the
stream started becomes one error event in the endpoint's own format (``on_error``), then the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

from starlette.types import Receive, Scope, Send

from llmplex.proxy.access_log import RequestRecord
from llmplex.proxy.disconnect import wait_disconnect

__all__ = ["ByteStreamResponse"]

_BASE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class ByteStreamResponse:
    def __init__(
        self,
        source: AsyncIterator[bytes],
        close: Callable[[], None],
        on_error: Callable[[Exception], bytes],
        *,
        headers: Sequence[tuple[bytes, bytes]] = (),
        tail: bytes = b"",
        record: RequestRecord | None = None,
    ) -> None:
        self._source = source
        self._close = close
        self._on_error = on_error
        self._tail = tail
        self._record = record
        self.status_code = 200
        self.raw_headers = [*_BASE_HEADERS, *headers]

    def close(self) -> None:
        """Release the upstream without sending anything (the client left before the answer started)."""
        self._close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        current = asyncio.current_task()
        assert current is not None
        left = pumping = False

        async def watch() -> None:
            nonlocal left
            await wait_disconnect(receive)
            if pumping:
                left = True
                current.cancel()

        watcher = asyncio.get_running_loop().create_task(watch())
        pumping = True
        try:
            await self._pump(send)
        except asyncio.CancelledError:
            if not left or current.uncancel() > 0:
                raise
        except OSError:
            pass  # the client's socket broke mid-write: it is gone
        finally:
            pumping = False
            self._close()
            watcher.cancel()
            _watchers.add(watcher)
            watcher.add_done_callback(_watchers.discard)

    async def _pump(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        tail = self._tail
        record = self._record
        try:
            async for data in self._source:
                if record is not None and record.ttft is None:
                    record.first_token()
                await send({"type": "http.response.body", "body": data, "more_body": True})
        except Exception as exc:
            tail = self._on_error(exc)
            if record is not None:
                record.error = type(exc).__name__
                record.upstream_failed(record.winner or record.model, exc)
        await send({"type": "http.response.body", "body": tail, "more_body": False})


_watchers: set[asyncio.Task[None]] = set()
