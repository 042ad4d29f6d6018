"""Module-level functions (LiteLLM's names) over lazily built default clients.

The only module state: clients, never settings. Sync functions share one ``Client`` (one
background loop). Async functions use one ``AsyncClient`` per running event loop, closed when that
loop shuts down its async generators (``asyncio.run`` and pytest do), so no session is leaked.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

from llmplex._streaming import CompletionStream
from llmplex._sync import Client, LoopThread, SyncStream
from llmplex.client import AsyncClient
from llmplex.types import ModelResponse

__all__ = [
    "aembedding",
    "atext_completion",
    "embedding",
    "text_completion",
    "abatch_completion",
    "abatch_completion_models",
    "abatch_completion_models_all_responses",
    "acompletion",
    "aiter_batch_completion",
    "batch_completion",
    "batch_completion_models",
    "batch_completion_models_all_responses",
    "completion",
    "iter_batch_completion",
]

_sync_client: Client | None = None
_sync_lock = threading.Lock()
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[AsyncClient, Any]] = (
    weakref.WeakKeyDictionary()
)


def _default_sync() -> Client:
    global _sync_client
    client = _sync_client
    if client is None:
        with _sync_lock:
            if _sync_client is None:
                _sync_client = Client()
                atexit.register(_close_sync)
            client = _sync_client
    return client


def background_loop() -> LoopThread:
    """The SDK's one background loop (the default ``Client``'s): where blocking facades run their calls."""
    return _default_sync().runner


def _close_sync() -> None:
    global _sync_client
    client, _sync_client = _sync_client, None
    if client is not None:
        client.close()


def reset_after_fork() -> None:
    global _sync_client
    _sync_client = None
    _async_clients.clear()


async def _closer(client: AsyncClient) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client.aclose()


def _default_async() -> AsyncClient:
    loop = asyncio.get_running_loop()
    entry = _async_clients.get(loop)
    if entry is not None:
        return entry[0]
    client = AsyncClient()
    # An async generator parked at its first yield is closed by loop.shutdown_asyncgens(),
    # which asyncio.run() and pytest-asyncio call before closing the loop: that closes the session.
    closer = _closer(client)
    step = closer.asend(None)
    try:
        step.send(None)
    except StopIteration:
        pass
    _async_clients[loop] = (client, closer)
    return client


# --- single completions ---------------------------------------------------------------------------


def completion(model: str, messages: list[dict[str, Any]], **options: Any) -> ModelResponse | SyncStream:
    """One chat completion (blocking). ``stream=True`` returns an iterator of chunks."""
    return _default_sync().completion(model, messages, **options)


async def acompletion(model: str, messages: list[dict[str, Any]], **options: Any) -> ModelResponse | CompletionStream:
    """One chat completion. ``stream=True`` returns an async iterator of chunks."""
    return await _default_async().completion(model, messages, **options)


# --- endpoints beyond chat ------------------------------------------------------------------------


def embedding(model: str | list[str], input: Any, **options: Any) -> Any:
    """Embeddings (blocking): an ``EmbeddingResponse``, or one per model for ``"a, b"`` / a list of models."""
    return _default_sync().embedding(model, input, **options)


async def aembedding(model: str | list[str], input: Any, **options: Any) -> Any:
    """Embeddings: an ``EmbeddingResponse``, or one per model for ``"a, b"`` / a list of models."""
    return await _default_async().embedding(model, input, **options)


def text_completion(prompt: Any, model: str | None = None, **options: Any) -> Any:
    """A legacy text completion (blocking); ``stream=True`` returns an iterator of chunks."""
    return _default_sync().text_completion(prompt, model, **options)


async def atext_completion(prompt: Any, model: str | None = None, **options: Any) -> Any:
    """A legacy text completion; ``stream=True`` returns an async iterator of chunks."""
    return await _default_async().text_completion(prompt, model, **options)


# --- many prompts -> one model --------------------------------------------------------------------


def batch_completion(model: str, messages: list[list[dict[str, Any]]], **options: Any) -> list[Any]:
    return _default_sync().batch_completion(model, messages, **options)


async def abatch_completion(model: str, messages: list[list[dict[str, Any]]], **options: Any) -> list[Any]:
    return await _default_async().batch_completion(model, messages, **options)


def iter_batch_completion(
    model: str, messages: list[list[dict[str, Any]]], **options: Any
) -> Iterator[tuple[int, Any]]:
    return _default_sync().iter_batch_completion(model, messages, **options)


def aiter_batch_completion(
    model: str, messages: list[list[dict[str, Any]]], **options: Any
) -> AsyncIterator[tuple[int, Any]]:
    return _default_async().iter_batch_completion(model, messages, **options)


# --- one prompt -> many models --------------------------------------------------------------------


def batch_completion_models(*args: Any, **options: Any) -> ModelResponse | SyncStream:
    return _default_sync().batch_completion_models(*args, **options)


async def abatch_completion_models(*args: Any, **options: Any) -> ModelResponse | CompletionStream:
    return await _default_async().batch_completion_models(*args, **options)


def batch_completion_models_all_responses(*args: Any, **options: Any) -> list[Any]:
    return _default_sync().batch_completion_models_all_responses(*args, **options)


async def abatch_completion_models_all_responses(*args: Any, **options: Any) -> list[Any]:
    return await _default_async().batch_completion_models_all_responses(*args, **options)
