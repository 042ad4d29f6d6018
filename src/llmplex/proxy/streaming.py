"""The SSE answer: an ASGI response that writes each upstream chunk as it arrives.

``data:`` lines only (older openai SDKs drop named events), ``data: [DONE]`` at the end, one
``data: {"error": ...}`` event if the upstream fails after the stream started. A disconnect is
watched for explicitly (not only noticed on the next write), so a client that leaves while the
upstream is silent still closes the upstream at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from starlette.types import Receive, Scope, Send

from llmplex import CompletionStream, ModelResponseStream
from llmplex._sse import encode_data, encode_done
from llmplex.proxy.access_log import RequestRecord
from llmplex.proxy.disconnect import wait_disconnect
from llmplex.proxy.errors import error_event
from llmplex.relayed import RelayedChunk

__all__ = ["EventStreamResponse"]

logger = logging.getLogger("llmplex.proxy")

_BASE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class EventStreamResponse:
    """Streams one ``CompletionStream``; the upstream is closed when the stream ends, fails or the client leaves."""

    def __init__(
        self,
        stream: CompletionStream,
        headers: Sequence[tuple[bytes, bytes]] = (),
        record: RequestRecord | None = None,
    ) -> None:
        self._stream = stream
        self.status_code = 200
        self.raw_headers = [*_BASE_HEADERS, *headers]
        self._record = record

    def close(self) -> None:
        """Release the upstream without sending anything (the client left before the answer started)."""
        self._stream.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the pump runs in this task (a task of its own would start an event-loop turn later, and under load
        # a turn takes milliseconds); a watcher task cancels it when the client leaves
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
            await self._pump(send)  # on cancellation its ``async with stream`` closes the upstream
        except asyncio.CancelledError:
            if not left or current.uncancel() > 0:
                raise  # cancelled by the server, not (only) by the client leaving
        except OSError:
            pass  # the client's socket broke mid-write: it is gone, and so is the upstream (closed above)
        finally:
            pumping = False
            watcher.cancel()
            _watchers.add(watcher)  # a cancelled task finishes on the next turn; keep it referenced until then
            watcher.add_done_callback(_watchers.discard)

    async def _pump(self, send: Send) -> None:
        stream = self._stream
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        tail = encode_done()
        record = self._record
        try:
            async with stream:  # closes the upstream unless it ended cleanly (then it may be reused)
                # chunks that arrived together go out in one write (nothing waits for more)
                while chunks := await stream.next_batch():
                    if record is not None:
                        for chunk in chunks:
                            _observe(record, chunk)
                    body = b"".join([encode_data(chunk.wire_bytes()) for chunk in chunks])
                    await send({"type": "http.response.body", "body": body, "more_body": True})
        except Exception as exc:
            tail = error_event(exc)
            if record is not None:
                record.error = type(exc).__name__
                record.upstream_failed(record.winner or record.model, exc)
        await send({"type": "http.response.body", "body": tail, "more_body": False})


_watchers: set[asyncio.Task[None]] = set()


def _observe(record: RequestRecord, chunk: ModelResponseStream | RelayedChunk) -> None:
    if record.ttft is None and chunk.has_content():
        record.first_token()
    if isinstance(chunk, RelayedChunk):
        counts = chunk.usage_counts()
        if counts is not None:
            record.usage = counts
        return
    usage = chunk.usage
    if usage is not None:
        record.usage = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }
