"""``CompletionStream``: OpenAI-shaped chunks out of any provider's SSE stream.

An async iterator and async context manager. Closing it (or leaving the ``async with``, or
cancelling the task reading it) closes the HTTP response. A stream that ends without the
provider's terminal event raises ``StreamError``; a stall raises ``Timeout``, so a stream never ends
silently short and never hangs.

Timeouts count progress, not reads: bytes that make no chunk (``: ping`` comments, a line that never
ends) move no deadline. Three deadlines, the earliest wins:
- first token: ``first_token_timeout`` from the request's start until a chunk with content or a tool
  call (a role-only chunk is not one);
- idle: ``idle_timeout`` after the last chunk (any chunk, a role-only one too);
- total: ``total_timeout`` (the call's ``timeout``) from the request's start, for the whole stream.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from llmplex._deadline import ReadDeadline
from llmplex._sse import DEFAULT_MAX_EVENT_BYTES, SSEDecoder
from llmplex._transport import RawStream
from llmplex.exceptions import APIError, StreamError, Timeout, unreadable_response
from llmplex.providers.base import CompletionRequest, ProviderAdapter
from llmplex.relayed import RelayedChunk
from llmplex.types import ModelResponseStream

__all__ = ["CompletionStream"]

_DRAIN_TIMEOUT = 1.0
_YIELD_PENDING = 256 * 1024


class CompletionStream:
    """Chunks of one streamed completion (``chat.completion.chunk`` objects)."""

    def __init__(  # noqa: PLR0913
        self,
        raw: RawStream,
        adapter: ProviderAdapter,
        request: CompletionRequest,
        *,
        first_token_timeout: float,
        idle_timeout: float,
        total_timeout: float | None = None,
        started: float | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        hidden_params: dict[str, Any] | None = None,
        relay: bool = False,
    ) -> None:
        """``started``: the loop time the request was sent (default now); first-token and total count from it."""
        self._raw = raw
        self._adapter = adapter
        self._request = request
        self._state = adapter.new_stream_state(request)
        self._decoder = SSEDecoder(max_event_bytes)
        # RelayedChunk: a relay's chunk, validated only when iterated (see next_batch)
        self._pending: deque[ModelResponseStream | RelayedChunk] = deque()
        self._parse_event = adapter.parse_event_relayed if relay and adapter.relays_wire else adapter.parse_event
        self._first_token_timeout = first_token_timeout
        self._idle_timeout = idle_timeout
        self._total_timeout = total_timeout
        self._clock = asyncio.get_running_loop().time
        now = self._clock()
        start = now if started is None else started
        # absolute deadlines on the loop's clock
        self._end_at = math.inf if total_timeout is None else start + total_timeout
        self._first_token_at = min(start + first_token_timeout, self._end_at)
        self._progress_at = now  # when the last chunk arrived
        self._any_chunk = False  # any chunk arrived: the idle timeout applies from then on
        self._got_chunk = False  # a chunk with content (or a tool call) arrived
        self._deadline = ReadDeadline()
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
                raise self._take_error()
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
                raise self._take_error()
            if self._ended:
                return []
            await self._fill()
        ready = list(self._pending)
        self._pending.clear()
        return ready

    def _take_error(self) -> BaseException:
        # no local keeps the error in the raising frame: a frame in its own traceback would be a cycle
        error, self._error = self._error, None
        assert error is not None
        return error

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
                raise self._take_error()
            if self._ended:
                raise StreamError("stream ended without content", provider=self.provider, model=self.model)
            await self._fill()

    async def _fill(self) -> None:
        """Read once from the body; a failure is recorded in ``_error`` and raised by the reader."""
        when = self._end_at if self._got_chunk else self._first_token_at
        if self._any_chunk:
            idle = self._progress_at + self._idle_timeout
            if idle < when:
                when = idle
        try:
            data = await self._deadline.run_until(self._raw.read_chunk(), when)
        except TimeoutError:
            self._fail(self._timeout(when))
            return
        except APIError as exc:
            self._fail(exc)
            return
        except BaseException:
            self._release()  # cancelled or anything unexpected: never leave the socket open
            raise
        if data:
            try:
                events = self._decoder.feed(data)
            except APIError as exc:  # an event over max_event_bytes
                self._fail(exc)
                return
            if events:
                self._parse(events)
            elif self._decoder.pending_size > _YIELD_PENDING:
                # reads of buffered data do not suspend: a long line arriving fast would hold the loop
                # until the event cap; let other tasks run between reads of it
                await asyncio.sleep(0)
            return
        self._parse(self._decoder.flush())
        if not self._state.finished and self._error is None:
            self._fail(StreamError("stream ended before the provider's end-of-stream event (truncated)"))
        self._ended = True
        self._deadline.cancel()

    def _timeout(self, when: float) -> Timeout:
        if when >= self._end_at:
            return Timeout(f"stream timeout ({self._total_timeout:g}s, the call's timeout) exceeded")
        if not self._got_chunk and when >= self._first_token_at:
            return Timeout(f"stream first-token timeout ({self._first_token_timeout:g}s) exceeded: no content yet")
        return Timeout(f"stream idle timeout ({self._idle_timeout:g}s) exceeded")

    def _parse(self, events: list[Any]) -> None:
        progressed = False
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
                progressed = True
                self._pending.extend(chunks)
                if not self._got_chunk:  # role-only chunks do not end the wait for the first token
                    self._got_chunk = any(chunk.has_content() for chunk in chunks)
        if progressed:
            self._progress_at = self._clock()
            self._any_chunk = True
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
        # its traceback holds the frame that caught it, whose ``self`` holds it: drop it, no cycle
        exc.__traceback__ = None
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
