"""The blocking facade: from plain code, from threads, from inside a running event loop; streams; close."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import llmplex
from llmplex import Client, ClientConfig, ModelResponse, RateLimitError, StreamError, SyncStream
from tests.raw_upstream import Conn, RawUpstream, Received, chunk_event, completion_body, serve_in_thread

MESSAGES = [{"role": "user", "content": "hi"}]


async def echo_handler(req: Received, conn: Conn) -> None:
    body = req.json()
    content = body["messages"][-1]["content"]
    if content == "hold":
        await conn.start_sse()
        await conn.send(chunk_event("a") + chunk_event("b"))
        await conn.wait_client_gone(timeout=10)
        return
    if body.get("stream"):
        await conn.start_sse()
        for word in ("one", " two", " three"):
            await conn.send(chunk_event(word))
        await conn.send(chunk_event(finish="stop") + b"data: [DONE]\n\n")
        return
    if content == "rate-limit":
        await conn.respond(429, {"error": {"message": "slow down"}})
        return
    await conn.respond(200, completion_body(content))


@pytest.fixture(scope="module")
def upstream() -> Any:
    with serve_in_thread(echo_handler) as up:
        yield up


def args(upstream: RawUpstream, content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {
        "model": "openai/m",
        "messages": [{"role": "user", "content": content}],
        "api_base": upstream.openai_base,
        "api_key": "k",
        "num_retries": 0,
        **extra,
    }


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_module_completion_from_plain_code(upstream: RawUpstream) -> None:
    response = llmplex.completion(**args(upstream, "plain"))
    assert isinstance(response, ModelResponse)
    assert response.choices[0].message.content == "plain"


def test_module_completion_from_several_threads(upstream: RawUpstream) -> None:
    def one(i: int) -> str | None:
        response = llmplex.completion(**args(upstream, f"thread {i}"))
        assert isinstance(response, ModelResponse)
        return response.choices[0].message.content

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(16), timeout=30))
    assert results == [f"thread {i}" for i in range(16)]


async def test_sync_completion_inside_a_running_event_loop(upstream: RawUpstream) -> None:
    asyncio.get_running_loop()  # like Jupyter: a loop is running in this thread
    response = llmplex.completion(**args(upstream, "inside a loop"))
    assert isinstance(response, ModelResponse)
    assert response.choices[0].message.content == "inside a loop"
    stream = llmplex.completion(**args(upstream, stream=True))
    assert isinstance(stream, SyncStream)
    with stream:
        assert len(list(stream)) == 4


async def test_sync_and_async_module_functions_together(upstream: RawUpstream) -> None:
    first = await llmplex.acompletion(**args(upstream, "async"))
    second = llmplex.completion(**args(upstream, "sync"))
    assert isinstance(first, ModelResponse) and isinstance(second, ModelResponse)
    assert (first.choices[0].message.content, second.choices[0].message.content) == ("async", "sync")


def test_errors_cross_the_thread_boundary_typed(upstream: RawUpstream) -> None:
    with pytest.raises(RateLimitError) as info:
        llmplex.completion(**args(upstream, "rate-limit"))
    assert info.value.status_code == 429
    assert info.value.provider == "openai"


def test_stream_iterator(upstream: RawUpstream) -> None:
    stream = llmplex.completion(**args(upstream, stream=True))
    assert isinstance(stream, SyncStream)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "one two three"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert stream.provider == "openai"


def test_stream_context_manager_closes_early(upstream: RawUpstream) -> None:
    before = upstream.disconnects
    with Client(ClientConfig.from_env({})) as client:
        stream = client.completion(**args(upstream, "hold", stream=True))
        assert isinstance(stream, SyncStream)
        with stream:
            assert next(stream).choices[0].delta.content == "a"
        assert wait_until(lambda: upstream.disconnects > before), "closing the stream did not close the connection"
        with pytest.raises(StopIteration):
            next(stream)


def test_stream_error_raises_through_the_iterator(upstream: RawUpstream) -> None:
    async def truncated(req: Received, conn: Conn) -> None:
        await conn.start_sse()
        await conn.send(chunk_event("a"))

    with serve_in_thread(truncated) as up, Client(ClientConfig.from_env({})) as client:
        stream = client.completion(**args(up, stream=True))
        assert isinstance(stream, SyncStream)
        with pytest.raises(StreamError):
            list(stream)


def test_client_close_stops_its_thread(upstream: RawUpstream) -> None:
    before = set(threading.enumerate())
    client = Client(ClientConfig.from_env({}))
    response = client.completion(**args(upstream, "own client"))
    assert isinstance(response, ModelResponse)
    (loop_thread,) = [t for t in threading.enumerate() if t not in before and t.name == "llmplex-loop"]
    client.close()
    client.close()  # idempotent
    assert not loop_thread.is_alive()
    assert client.async_client.loop is not None and client.async_client.loop.is_closed()


def test_client_context_manager_and_run(upstream: RawUpstream) -> None:
    with Client(ClientConfig.from_env({})) as client:

        async def twice() -> list[Any]:
            c = client.async_client
            return list(await asyncio.gather(*(c.completion(**args(upstream, str(i))) for i in range(2))))

        results = client.run(twice())
    assert [r.choices[0].message.content for r in results] == ["0", "1"]


def test_mock_response_needs_no_server() -> None:
    with Client(ClientConfig.from_env({})) as client:
        response = client.completion("gpt-4o", MESSAGES, mock_response="hello there")
    assert isinstance(response, ModelResponse)
    assert response.choices[0].message.content == "hello there"
