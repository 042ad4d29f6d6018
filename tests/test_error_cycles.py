"""Failed requests leave no reference cycles (issue 17, item 10).

The proxy runs with the cyclic collector tuned to run rarely, and a cycle through a traceback pins every
frame on it (the request body, the parsed messages, the error body) until a full collection: 800 MB were
held after failed 9 MB requests. So every error path must be freed by reference counting alone.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from types import FrameType, TracebackType
from typing import Any

from llmplex import APIError, AsyncClient, ClientConfig, CompletionStream

MESSAGES = [{"role": "user", "content": "x" * 1000}]


async def _fail(call: Callable[[], Awaitable[Any]]) -> None:
    try:
        result = await call()
        if isinstance(result, CompletionStream):
            async with result:
                async for _ in result:
                    pass
    except APIError:
        pass
    else:
        raise AssertionError("the call was expected to fail")


async def test_failed_requests_leave_no_reference_cycles(emulator: Any) -> None:
    config = ClientConfig.from_env({}, num_retries=0, max_stream_event_bytes=64 * 1024)
    async with AsyncClient(config) as c:
        base = emulator.openai_base

        def call(model: str, **options: Any) -> Callable[[], Awaitable[Any]]:
            return lambda: c.completion(f"openai/{model}", MESSAGES, api_base=base, api_key="k", **options)

        failures = [
            call("m-status-400"),  # 4xx
            call("m-status-500-retryafterms-1", num_retries=2),  # 5xx after retries
            call("m-status-429-retryafterms-1", num_retries=1, stream=True),  # on stream open, after a retry
            call("m-fault-stallheaders", timeout=0.2),  # timeout
            call("m-fault-malformed"),  # unreadable body
            call("m-fault-midstream", stream=True),  # error event mid-stream
            call("m-fault-truncate", stream=True),  # stream cut short
            call("m-fault-rolestall", stream=True, stream_first_token_timeout=0.2),  # stream timeout
            call("m-fault-endlessline", stream=True),  # stream event over the cap
        ]
        for failure in failures:  # once unmeasured: lazy imports and caches are not cycles
            await _fail(failure)
        gc.collect()
        gc.disable()
        try:
            for failure in failures:
                await _fail(failure)
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                unreachable = gc.collect()
                kinds = sorted({type(o).__qualname__ for o in gc.garbage})
                pinned = [o for o in gc.garbage if isinstance(o, (BaseException, TracebackType, FrameType))]
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
        finally:
            gc.enable()
    # no exception, traceback or frame in a cycle: those pin whole requests. A closed connection may leave
    # a few of asyncio's own transport objects (socket <-> transport), bounded per connection, never frames
    assert not pinned, f"{len(pinned)} errors/frames in cycles: {kinds}"
    assert unreachable < 10 * len(failures), f"{unreachable} objects in cycles after {len(failures)} failures: {kinds}"
