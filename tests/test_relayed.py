"""``run_call(relay=True)``: OpenAI-compatible answers kept as sent, validated only when read; bodies that are
JSON but not chat completions are typed errors on every path (plain, relayed, streamed)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import orjson
import pytest

from llmplex import AsyncClient, ClientConfig, CompletionStream, ModelResponse, ModelResponseStream, StreamError
from llmplex._request import resolve_call
from llmplex.cost import completion_cost
from llmplex.relayed import RelayedChunk, RelayedResponse, relayable, relayable_chunk
from tests.raw_upstream import Conn, RawUpstream, Received, chunk_event, completion_body, serve

MESSAGES = [{"role": "user", "content": "hi"}]


def answering(body: bytes | dict[str, Any]) -> Any:
    async def handler(req: Received, conn: Conn) -> None:
        await conn.respond(200, body)

    return handler


async def relay(upstream: RawUpstream, model: str = "openai/m") -> Any:
    async with AsyncClient(ClientConfig.from_env({}), num_retries=0, timeout=10.0) as client:
        call = resolve_call(model, MESSAGES, {"api_base": upstream.openai_base, "api_key": "k"}, client.config)
        return await client.run_call(call, relay=True)


def test_relayable_accepts_a_chat_completion_outline() -> None:
    body = completion_body()
    assert relayable(body)
    assert relayable({**body, "usage": None})
    assert relayable({k: v for k, v in body.items() if k != "usage"})
    assert relayable({**body, "x_vendor": {"anything": [1, 2]}})


@pytest.mark.parametrize(
    "change",
    [
        {"id": 1},
        {"created": "1"},
        {"choices": None},
        {"choices": [1]},
        {"choices": [{"index": 0, "message": None}]},
        {"usage": {"prompt_tokens": "1", "completion_tokens": 1, "total_tokens": 2}},
        {"usage": [1]},
        {"error": {"message": "quota"}},
    ],
)
def test_relayable_refuses_anything_else(change: dict[str, Any]) -> None:
    assert not relayable({**completion_body(), **change})
    assert not relayable([completion_body()])


async def test_relayed_answer_is_the_upstream_bytes_and_reads_like_a_model_response() -> None:
    body = {**completion_body("hello"), "model": "gpt-4o-mini", "x_vendor": {"a": 1}}
    body["usage"] = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    wire = orjson.dumps(body, option=orjson.OPT_INDENT_2)
    async with serve(answering(wire)) as up:
        response = await relay(up, "openai/gpt-4o-mini")
    assert isinstance(response, RelayedResponse)
    assert response.wire_bytes() == wire
    assert response.usage_counts() == {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    assert response.hidden_params["api_base"] == up.openai_base
    assert response.hidden_params["response_ms"] > 0
    # everything else validates the body once, on first use
    assert response.choices[0].message.content == "hello"
    parsed = response.response()
    assert isinstance(parsed, ModelResponse) and parsed is response.response()
    assert parsed.hidden_params is response.hidden_params
    assert parsed.wire_bytes() == wire
    cost = response.hidden_params["response_cost"]
    assert cost > 0 and cost == pytest.approx(completion_cost(parsed))


async def test_a_body_without_the_outline_is_validated_as_before() -> None:
    lax = completion_body("hello")
    lax["usage"] = {"prompt_tokens": "1", "completion_tokens": "1", "total_tokens": "2"}  # numbers as strings
    async with serve(answering(lax)) as up:
        response = await relay(up)
    assert isinstance(response, ModelResponse)  # the validated path, which reads "1" as 1
    assert response.usage is not None and response.usage.total_tokens == 2


async def test_other_providers_answers_are_never_relayed() -> None:
    anthropic = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": "hello"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }

    async def handler(req: Received, conn: Conn) -> None:
        await conn.respond(200, anthropic)

    async with serve(handler) as up, AsyncClient(ClientConfig.from_env({}), num_retries=0) as client:
        options = {"api_base": up.openai_base.removesuffix("/v1"), "api_key": "k"}
        call = resolve_call("anthropic/claude-x", MESSAGES, options, client.config)
        response = await client.run_call(call, relay=True)
    assert isinstance(response, ModelResponse)
    assert response.choices[0].message.content == "hello"


@pytest.mark.parametrize("relayed", [False, True])
async def test_json_that_is_not_a_completion_is_a_stream_error(relayed: bool) -> None:
    body = completion_body()
    body["choices"] = [{"index": 0, "finish_reason": "stop"}]  # no message
    async with serve(answering(body)) as up:
        with pytest.raises(StreamError, match=r"not a chat completion \(choices\.0\.message: Field required\)"):
            if relayed:
                await relay(up)
            else:
                async with AsyncClient(ClientConfig.from_env({}), num_retries=0) as client:
                    await client.completion("openai/m", MESSAGES, api_base=up.openai_base, api_key="k")


async def test_a_relayed_body_that_fails_full_validation_raises_a_stream_error_when_read() -> None:
    body = copy.deepcopy(completion_body())
    body["choices"][0]["message"]["tool_calls"] = [{"id": "t", "type": "function"}]  # no function
    async with serve(answering(body)) as up:
        response = await relay(up)
    assert isinstance(response, RelayedResponse)  # the outline is fine: relayed as sent
    with pytest.raises(StreamError, match="not a chat completion"):
        response.response()


async def test_a_chunk_that_is_not_a_chunk_ends_the_stream_with_a_stream_error() -> None:
    async def handler(req: Received, conn: Conn) -> None:
        await conn.start_sse()
        await conn.send(chunk_event("a"))
        await conn.send(b'data: {"id": "c", "created": 1, "choices": [{"index": 0}]}\n\n')  # no delta
        await conn.wait_client_gone()  # the stream stays open: only the client can end it

    async with serve(handler) as up, AsyncClient(ClientConfig.from_env({}), num_retries=0) as client:
        stream = await client.completion("openai/m", MESSAGES, api_base=up.openai_base, api_key="k", stream=True)
        contents: list[str | None] = []
        with pytest.raises(StreamError, match="not a chat completion"):
            async for chunk in stream:
                contents.append(chunk.choices[0].delta.content)
        assert contents == ["a"]
        # the failed stream's connection is closed at once, not left to the garbage collector
        await asyncio.wait_for(up.disconnected.wait(), 10)


def test_relayable_chunk_outline() -> None:
    chunk = orjson.loads(chunk_event("a").removeprefix(b"data: "))
    assert relayable_chunk(chunk)
    assert relayable_chunk({**chunk, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}})
    for change in ({"id": None}, {"created": 1.5}, {"choices": [{"index": 0}]}, {"usage": {"total_tokens": "3"}}):
        assert not relayable_chunk({**chunk, **change})


async def open_relayed_stream(up: RawUpstream, client: AsyncClient) -> CompletionStream:
    options = {"api_base": up.openai_base, "api_key": "k", "stream": True}
    stream = await client.run_call(resolve_call("openai/m", MESSAGES, options, client.config), relay=True)
    assert isinstance(stream, CompletionStream)
    return stream


async def test_a_relayed_stream_hands_out_the_upstream_chunks_unvalidated() -> None:
    usage_chunk = b'data: {"id":"c","created":1,"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
    events = [chunk_event("he"), chunk_event("llo"), chunk_event(finish="stop"), usage_chunk, b"data: [DONE]\n\n"]

    async def handler(req: Received, conn: Conn) -> None:
        await conn.start_sse()
        for event in events:
            await conn.send(event)
            await asyncio.sleep(0.01)  # separate reads, so batches are small

    async with serve(handler) as up, AsyncClient(ClientConfig.from_env({}), num_retries=0, timeout=10.0) as client:
        stream = await open_relayed_stream(up, client)
        chunks: list[Any] = []
        for _ in range(20):  # bounded: five chunks
            batch = await stream.next_batch()
            if not batch:
                break
            chunks += batch
    assert all(isinstance(c, RelayedChunk) for c in chunks)
    assert [c.wire_bytes() for c in chunks] == [e.removeprefix(b"data: ").rstrip(b"\n") for e in events[:4]]
    assert [c.has_content() for c in chunks] == [True, True, False, False]
    assert chunks[3].usage_counts() == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert chunks[0].usage_counts() is None
    validated = chunks[1].chunk()
    assert isinstance(validated, ModelResponseStream) and validated.choices[0].delta.content == "llo"
    assert validated.has_content() and validated.wire_bytes() == chunks[1].wire_bytes()


async def test_iterating_a_relayed_stream_validates_and_a_bad_chunk_ends_it() -> None:
    async def handler(req: Received, conn: Conn) -> None:
        await conn.start_sse()
        await conn.send(chunk_event("a"))
        # a chunk's outline, but a delta that is not one (content must be text)
        await conn.send(b'data: {"id":"c","created":1,"choices":[{"index":0,"delta":{"content":{"x":1}}}]}\n\n')
        await conn.wait_client_gone()

    async with serve(handler) as up, AsyncClient(ClientConfig.from_env({}), num_retries=0, timeout=10.0) as client:
        stream = await open_relayed_stream(up, client)
        seen: list[Any] = []
        with pytest.raises(StreamError, match="not a chat completion"):
            async for chunk in stream:  # bounded by the stream: two chunks, then the error
                seen.append(chunk)
        assert len(seen) == 1 and isinstance(seen[0], ModelResponseStream)
        assert seen[0].choices[0].delta.content == "a"
        await asyncio.wait_for(up.disconnected.wait(), 10)
