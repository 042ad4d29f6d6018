"""``CompletionStream``: OpenAI-shaped chunks out of any provider's SSE stream.

An async iterator and async context manager. Closing it (or leaving the ``async with``, or
cancelling the task reading it) closes the HTTP response. A stream that ends without the
provider's terminal event raises ``StreamError``; a stall raises ``Timeout`` (first-token and idle
timeouts), so a stream never ends silently short and never hangs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from llmplex._deadline import ReadDeadline
from llmplex._sse import SSEDecoder
from llmplex._transport import RawStream
from llmplex.exceptions import APIError, StreamError, Timeout, unreadable_response
from llmplex.providers.base import CompletionRequest, ProviderAdapter
from llmplex.relayed import RelayedChunk
from llmplex.types import ModelResponseStream

__all__ = ["CompletionStream"]

_DRAIN_TIMEOUT = 1.0


class CompletionStream:
    """Chunks of one streamed completion (``chat.completion.chunk`` objects)."""

    def __init__(
        self,
        raw: RawStream,
        adapter: ProviderAdapter,
        request: CompletionRequest,
        *,
        first_token_timeout: float,
        idle_timeout: float,
        hidden_params: dict[str, Any] | None = None,
        relay: bool = False,
    ) -> None:
        self._raw = raw
        self._adapter = adapter
        self._request = request
        self._state = adapter.new_stream_state(request)
        self._decoder = SSEDecoder()
        # RelayedChunk: a relay's chunk, validated only when iterated (see next_batch)
        self._pending: deque[ModelResponseStream | RelayedChunk] = deque()
        self._parse_event = adapter.parse_event_relayed if relay and adapter.relays_wire else adapter.parse_event
        self._first_token_timeout = first_token_timeout
        self._idle_timeout = idle_timeout
        self._got_chunk = False
        self._deadline = ReadDeadline()  # first-token, then idle timeout on every read
        self._ended = False
        self._error: BaseException | None = None
        self.provider = adapter.name
        self.model = request.model
        self.response_headers = raw.headers
        self.hidden_params: dict[str, Any] = hidden_params if hidden_params is not None else {}

    def preload(self, chunks: list[ModelResponseStream]) -> None:
        """Queue ready-made chunks and mark the stream complete (mock responses)."""
        self._pending.extend(chunks)
        self._ended = True

    def __aiter__(self) -> CompletionStream:
        return self

    async def __anext__(self) -> ModelResponseStream:
        while not self._pending:
            if self._error is not None:
                # raised once, after every chunk that arrived before the failure was delivered
                error, self._error = self._error, None
                raise error
            if self._ended:
                raise StopAsyncIteration
            await self._fill()
        chunk = self._pending.popleft()
        return chunk if isinstance(chunk, ModelResponseStream) else self._validated(chunk)

    async def next_batch(self) -> list[ModelResponseStream | RelayedChunk]:
        """Wait for a chunk, then take every chunk already received ([] once the stream has ended).

        For a relay: chunks of a stream opened with ``relay=True`` come as ``RelayedChunk``s, unvalidated.
        Errors are raised as iteration raises them.
        """
        while not self._pending:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            if self._ended:
                return []
            await self._fill()
        ready = list(self._pending)
        self._pending.clear()
        return ready

    def _validated(self, chunk: RelayedChunk) -> ModelResponseStream:
        try:
            return chunk.chunk()
        except APIError as exc:  # not a chunk after all: the stream ends here, its socket closed
            self._pending.clear()
            self._fail(exc)
            self._error = None
            raise

    async def peek_first_content(self) -> ModelResponseStream:
        """Read until a chunk with content (text or tool call) is buffered; the chunks stay queued.

        Used to race streams on their first token. Raises like iteration would, or ``StreamError``
        when the stream ends without any content.
        """
        while True:
            for chunk in self._pending:
                if chunk.has_content():
                    return chunk if isinstance(chunk, ModelResponseStream) else self._validated(chunk)
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            if self._ended:
                raise StreamError("stream ended without content", provider=self.provider, model=self.model)
            await self._fill()

    async def _fill(self) -> None:
        """Read once from the body; a failure is recorded in ``_error`` and raised by the reader."""
        timeout = self._idle_timeout if self._got_chunk else self._first_token_timeout
        try:
            data = await self._deadline.run(self._raw.read_chunk(), timeout)
        except TimeoutError:
            what = "idle" if self._got_chunk else "first-token"
            self._fail(Timeout(f"stream {what} timeout ({timeout:g}s) exceeded"))
            return
        except APIError as exc:
            self._fail(exc)
            return
        except BaseException:
            self._release()  # cancelled or anything unexpected: never leave the socket open
            raise
        if data:
            self._parse(self._decoder.feed(data))
            return
        self._parse(self._decoder.flush())
        if not self._state.finished and self._error is None:
            self._fail(StreamError("stream ended before the provider's end-of-stream event (truncated)"))
        self._ended = True
        self._deadline.cancel()

    def _parse(self, events: list[Any]) -> None:
        for event in events:
            if self._state.finished:
                break
            try:
                chunks = self._parse_event(event, self._state)
            except APIError as exc:
                self._fail(exc)
                return
            except ValidationError as exc:  # JSON, but not a chunk
                self._fail(unreadable_response(exc, self.provider, self.model))
                return
            if chunks:
                self._got_chunk = True
                self._pending.extend(chunks)
        if self._state.finished and not self._ended:
            self._ended = True
            self._deadline.cancel()
            # the terminal event arrived: drain what is left so the connection can be reused
            if not self._raw.release_if_received():
                self._schedule_drain()

    def _schedule_drain(self) -> None:
        raw = self._raw

        async def drain() -> None:
            try:
                async with asyncio.timeout(_DRAIN_TIMEOUT):
                    while await raw.read_chunk():
                        pass
            except BaseException:
                raw.close()

        task = asyncio.get_running_loop().create_task(drain())
        _background.add(task)
        task.add_done_callback(_background.discard)

    def _fail(self, exc: APIError) -> None:
        """End the stream with ``exc``: the socket is closed now, the error raised after queued chunks."""
        if exc.provider is None:
            exc.provider = self.provider
        if exc.model is None:
            exc.model = self.model
        self._error = exc
        self._release()

    def _release(self) -> None:
        self._ended = True
        self._deadline.cancel()
        self._raw.close()

    def close(self) -> None:
        """Abandon the stream: the HTTP response is closed at once and iteration stops."""
        self._pending.clear()
        self._error = None
        self._release()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> CompletionStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._ended or exc is not None:
            self.close()


# Drain tasks are referenced here so they are not garbage-collected mid-flight.
_background: set[asyncio.Task[None]] = set()
