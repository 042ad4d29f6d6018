"""CompletionStream against real loopback servers: ends, errors, stalls and early closes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from llmplex import (
    APIConnectionError,
    AsyncClient,
    ClientConfig,
    CompletionStream,
    RateLimitError,
    StreamError,
    Timeout,
)
from tests.raw_upstream import Conn, RawUpstream, Received, chunk_event, serve

MESSAGES = [{"role": "user", "content": "hi"}]
DONE = b"data: [DONE]\n\n"


async def open_stream(c: AsyncClient, upstream: RawUpstream, **options: Any) -> CompletionStream:
    stream = await c.completion(
        "openai/m", MESSAGES, api_base=upstream.openai_base, api_key="k", stream=True, **options
    )
    assert isinstance(stream, CompletionStream)
    return stream


def sse_handler(*parts: bytes, then: str = "close", delay: float = 0.0) -> Any:
    """Send the parts, then ``close`` the socket or ``hold`` it open until the client leaves."""

    async def handler(req: Received, conn: Conn) -> None:
        await conn.start_sse()
        for part in parts:
            await conn.send(part)
            if delay:
                await asyncio.sleep(delay)
        if then == "hold":
            await conn.wait_client_gone(timeout=10)

    return handler


async def collect(stream: CompletionStream) -> list[Any]:
    return [chunk async for chunk in stream]


async def test_complete_stream() -> None:
    handler = sse_handler(chunk_event("Hel"), chunk_event("lo"), chunk_event(finish="stop"), DONE, then="hold")
    async with serve(handler) as up, AsyncClient(ClientConfig.from_env({})) as c:
        stream = await open_stream(c, up)
        chunks = await collect(stream)
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "Hello"
        assert chunks[-1].choices[0].finish_reason == "stop"
        assert stream.provider == "openai" and stream.model == "m"
        assert stream.hidden_params["api_base"] == up.openai_base
        # the server holds the socket open after [DONE]: the stream still ends, and the connection is let go
        assert await asyncio.wait_for(up.disconnected.wait(), 5)


@pytest.mark.parametrize("one_write", [False, True], ids=["separate", "coalesced"])
async def test_truncated_stream_raises(one_write: bool) -> None:
    parts = [chunk_event("a") + chunk_event("b")] if one_write else [chunk_event("a"), chunk_event("b")]
    async with serve(sse_handler(*parts)) as up, AsyncClient(ClientConfig.from_env({})) as c:
        stream = await open_stream(c, up, num_retries=3)
        received: list[Any] = []
        with pytest.raises(StreamError, match="truncated") as info:
            async for chunk in stream:
                received.append(chunk)
    assert len(received) == 2
    assert info.value.provider == "openai" and info.value.model == "m"
    assert len(up.requests) == 1  # never retried once chunks were delivered
    with pytest.raises(StopAsyncIteration):  # the error is raised once, then the stream is over
        await anext(stream)


async def test_empty_body_is_truncated() -> None:
    async with serve(sse_handler()) as up, AsyncClient(ClientConfig.from_env({})) as c:
        stream = await open_stream(c, up)
        with pytest.raises(StreamError):
            await collect(stream)


async def test_first_token_timeout() -> None:
    async with serve(sse_handler(then="hold")) as up, AsyncClient(ClientConfig.from_env({})) as c:
        started = time.monotonic()  # the first-token timeout counts from the request, not the response head
        stream = await open_stream(c, up, stream_first_token_timeout=0.3, stream_idle_timeout=30)
        with pytest.raises(Timeout, match="first-token"):
            await collect(stream)
        assert 0.3 <= time.monotonic() - started < 2
        assert await asyncio.wait_for(up.disconnected.wait(), 5)


async def test_idle_timeout() -> None:
    async with serve(sse_handler(chunk_event("a"), then="hold")) as up, AsyncClient(ClientConfig.from_env({})) as c:
        stream = await open_stream(c, up, stream_first_token_timeout=30, stream_idle_timeout=0.3)
        received: list[Any] = []
        started = time.monotonic()
        with pytest.raises(Timeout, match="idle"):
            async for chunk in stream:
                received.append(chunk)
        assert 0.3 <= time.monotonic() - started < 2
        assert len(received) == 1
        assert await asyncio.wait_for(up.disconnected.wait(), 5)


async def test_slow_but_steady_stream_is_not_cut_by_the_idle_timeout() -> None:
    parts = [chunk_event(str(i)) for i in range(6)] + [chunk_event(finish="stop"), DONE]
    async with serve(sse_handler(*parts, delay=0.1)) as up, AsyncClient(ClientConfig.from_env({})) as c:
        stream = await open_stream(c, up, stream_idle_timeout=0.4, timeout=5)
        chunks = await collect(stream)
    assert len(chunks) == 7


async def test_headers_that_never_come_hit_the_timeout() -> None:
    async def handler(req: Received, conn: Conn) -> None:
        await conn.wait_client_gone(timeout=10)

    async with serve(handler) as up, AsyncClient(ClientConfig.from_env({})) as c:
        started = time.monotonic()
        with pytest.raises(Timeout):
            await open_stream(c, up, timeout=0.4)
        assert time.monotonic() - started < 2
        assert await asyncio.wait_for(up.disconnected.wait(), 5)


@pytest.mark.parametrize("how", ["aclose", "close", "async_with", "cancel"])
async def test_early_close_closes_the_http_response(how: str) -> None:
    parts = [chunk_event("a"), chunk_event("b")]
    async with serve(sse_handler(*parts, then="hold")) as up, AsyncClient(ClientConfig.from_env({})) as c:
        stream = await open_stream(c, up)
        if how == "async_with":
            async with stream:
                assert (await anext(stream)).has_content()
        elif how == "cancel":
            await anext(stream)
            await anext(stream)

            async def read_rest() -> None:
                await collect(stream)

            task = asyncio.create_task(read_rest())
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            await anext(stream)
            if how == "aclose":
                await stream.aclose()
            else:
                stream.close()
        assert await asyncio.wait_for(up.disconnected.wait(), 5), "the upstream never saw the client leave"
        with pytest.raises(StopAsyncIteration):
            await anext(stream)


@pytest.mark.parametrize("one_write", [False, True], ids=["separate", "coalesced"])
async def test_mid_stream_error_event(one_write: bool) -> None:
    error = b'data: {"error": {"message": "model overloaded", "type": "server_error", "code": "overloaded"}}\n\n'
    parts = [chunk_event("a") + error] if one_write else [chunk_event("a"), error]
    async with serve(sse_handler(*parts, then="hold")) as up, AsyncClient(ClientConfig.from_env({})) as c:
        stream = await open_stream(c, up)
        received: list[Any] = []
        with pytest.raises(StreamError, match="model overloaded") as info:
            async for chunk in stream:
                received.append(chunk)
        assert len(received) == 1  # the chunk before the error is delivered first
        assert info.value.code == "overloaded"
        assert info.value.provider == "openai"
        assert await asyncio.wait_for(up.disconnected.wait(), 5)


async def test_malformed_data_line() -> None:
    async with (
        serve(sse_handler(chunk_event("a"), b"data: {oops\n\n", then="hold")) as up,
        AsyncClient(ClientConfig.from_env({})) as c,
    ):
        stream = await open_stream(c, up)
        with pytest.raises(StreamError, match="malformed"):
            await collect(stream)


async def test_connection_reset_mid_stream() -> None:
    async def handler(req: Received, conn: Conn) -> None:
        await conn.send_head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"})
        event = chunk_event("a")
        await conn.send(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        await asyncio.sleep(0.05)
        conn.writer.transport.abort()

    async with serve(handler) as up, AsyncClient(ClientConfig.from_env({})) as c:
        stream = await open_stream(c, up)
        with pytest.raises((StreamError, APIConnectionError)):
            await collect(stream)


async def test_status_error_before_the_stream_is_retried() -> None:
    async def handler(req: Received, conn: Conn) -> None:
        if len(conn.upstream.requests) == 1:
            await conn.respond(429, {"error": {"message": "slow down"}}, {"retry-after-ms": "50"})
            return
        await conn.start_sse()
        await conn.send(chunk_event("ok") + chunk_event(finish="stop") + DONE)

    async with serve(handler) as up, AsyncClient(ClientConfig.from_env({})) as c:
        stream = await open_stream(c, up, num_retries=1)
        chunks = await collect(stream)
    assert len(up.requests) == 2
    assert chunks[0].choices[0].delta.content == "ok"


async def test_status_error_on_stream_open() -> None:
    async def handler(req: Received, conn: Conn) -> None:
        await conn.respond(429, {"error": {"message": "slow down"}})

    async with serve(handler) as up, AsyncClient(ClientConfig.from_env({})) as c:
        with pytest.raises(RateLimitError):
            await open_stream(c, up, num_retries=0)


async def test_peek_first_content_keeps_chunks_queued() -> None:
    parts = [b": ping\n\n", chunk_event(""), chunk_event("first"), chunk_event(finish="stop"), DONE]
    async with serve(sse_handler(*parts)) as up, AsyncClient(ClientConfig.from_env({})) as c:
        stream = await open_stream(c, up)
        first = await stream.peek_first_content()
        assert first.choices[0].delta.content == "first"
        chunks = await collect(stream)
    assert [ch.choices[0].delta.content for ch in chunks] == ["", "first", None]


async def test_peek_first_content_on_a_stream_without_content() -> None:
    async with serve(sse_handler(chunk_event(finish="stop"), DONE)) as up, AsyncClient(ClientConfig.from_env({})) as c:
        stream = await open_stream(c, up)
        with pytest.raises(StreamError, match="without content"):
            await stream.peek_first_content()


async def test_big_event_in_one_line() -> None:
    big = "x" * (1024 * 1024)
    async with (
        serve(sse_handler(chunk_event(big), chunk_event(finish="stop"), DONE)) as up,
        AsyncClient(ClientConfig.from_env({})) as c,
    ):
        stream = await open_stream(c, up)
        chunks = await collect(stream)
    assert chunks[0].choices[0].delta.content == big
