"""``Client``: the blocking facade over ``AsyncClient``, on one long-lived background event loop.

Never a new loop or a thread per call: the aiohttp session is bound to its loop, so every call of
one ``Client`` runs on that client's loop thread. Works from plain scripts, from other threads and
from inside a running event loop (Jupyter): the caller blocks while the background loop works.
Ctrl-C (or any exception while waiting) cancels the call on the loop, which closes its requests.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterator
from types import TracebackType
from typing import Any, TypeVar

from llmplex._streaming import CompletionStream
from llmplex.client import AsyncClient
from llmplex.config import ClientConfig
from llmplex.endpoint_types import TextCompletionResponse
from llmplex.exceptions import LLMplexError
from llmplex.text_completions import TextCompletionStream
from llmplex.types import ModelResponse, ModelResponseStream

__all__ = ["Client", "LoopThread", "SyncStream"]

T = TypeVar("T")


def _new_loop() -> asyncio.AbstractEventLoop:
    # uvloop (installed with the proxy extra) roughly halves the per-request loop overhead
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class LoopThread:
    """A daemon thread running one event loop forever."""

    def __init__(self, name: str = "llmplex-loop") -> None:
        self.loop = _new_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise LLMplexError("a sync llmplex call cannot run on its own background loop; await the async API")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # KeyboardInterrupt & co: cancel the task so its requests are closed
            raise

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


class SyncStream:
    """A blocking iterator and context manager over a ``CompletionStream`` (or a ``TextCompletionStream``)
    living on the loop thread."""

    def __init__(self, runner: LoopThread, stream: CompletionStream | TextCompletionStream) -> None:
        self._runner = runner
        self._stream = stream
        self.provider = getattr(stream, "provider", None)
        self.model = getattr(stream, "model", None)
        self.hidden_params = getattr(stream, "hidden_params", {})

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return self._runner.run(_next(self._stream))
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        self._runner.run(self._stream.aclose())

    def __enter__(self) -> SyncStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


async def _next(stream: CompletionStream | TextCompletionStream) -> ModelResponseStream | TextCompletionResponse:
    return await stream.__anext__()


class Client:
    """Blocking client with the same methods as ``AsyncClient``."""

    def __init__(self, config: ClientConfig | None = None, **overrides: Any) -> None:
        self._runner = LoopThread()
        self._async = AsyncClient(config, **overrides)
        self.config = self._async.config
        self._closed = False

    @property
    def async_client(self) -> AsyncClient:
        return self._async

    @property
    def runner(self) -> LoopThread:
        """The background loop this client's calls run on."""
        return self._runner

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run any awaitable of this client's on its loop and return the result."""

        async def wrap() -> T:
            return await awaitable

        return self._runner.run(wrap())

    def completion(self, model: str, messages: list[dict[str, Any]], **options: Any) -> ModelResponse | SyncStream:
        result = self._runner.run(self._async.completion(model, messages, **options))
        if isinstance(result, CompletionStream):
            return SyncStream(self._runner, result)
        return result

    def batch_completion(self, model: str, messages: list[list[dict[str, Any]]], **options: Any) -> list[Any]:
        return self._runner.run(self._async.batch_completion(model, messages, **options))

    def embedding(self, model: str | list[str], input: Any, **options: Any) -> Any:
        return self._runner.run(self._async.embedding(model, input, **options))

    def text_completion(self, prompt: Any, model: str | None = None, **options: Any) -> Any:
        result = self._runner.run(self._async.text_completion(prompt, model, **options))
        if isinstance(result, TextCompletionStream):
            return SyncStream(self._runner, result)
        return result

    def iter_batch_completion(
        self, model: str, messages: list[list[dict[str, Any]]], **options: Any
    ) -> Iterator[tuple[int, Any]]:
        agen = self._async.iter_batch_completion(model, messages, **options)
        try:
            while True:
                try:
                    yield self._runner.run(_anext_item(agen))
                except StopAsyncIteration:
                    return
        finally:
            self._runner.run(agen.aclose())  # type: ignore[attr-defined]

    def batch_completion_models(self, *args: Any, **options: Any) -> ModelResponse | SyncStream:
        result = self._runner.run(self._async.batch_completion_models(*args, **options))
        if isinstance(result, CompletionStream):
            return SyncStream(self._runner, result)
        return result

    def batch_completion_models_all_responses(self, *args: Any, **options: Any) -> list[Any]:
        return self._runner.run(self._async.batch_completion_models_all_responses(*args, **options))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._runner.run(self._async.aclose())
        finally:
            self._runner.stop()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


async def _anext_item(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()


def _after_fork_in_child() -> None:
    # a forked child has no loop thread: drop the inherited default client (see _api)
    from llmplex import _api

    _api.reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
