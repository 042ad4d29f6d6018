"""Gemini end to end: ``llmplex.AsyncClient`` -> real HTTP -> the emulator's ``generateContent`` routes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from llmplex import AsyncClient
from llmplex._streaming import CompletionStream
from llmplex.config import ClientConfig
from llmplex.exceptions import AuthenticationError, NotFoundError, RateLimitError, StreamError
from llmplex.types import ModelResponse, ModelResponseStream

MODEL = "gemini-2.0-flash"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello brave new world"}]
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}


@pytest.fixture
async def client() -> AsyncIterator[AsyncClient]:
    c = AsyncClient(ClientConfig(num_retries=0, timeout=10.0))
    try:
        yield c
    finally:
        await c.aclose()


async def complete(client: AsyncClient, emulator: Any, model: str, **options: Any) -> ModelResponse:
    messages = options.pop("messages", MESSAGES)
    options.setdefault("api_key", "test")
    response = await client.completion(f"gemini/{model}", messages, api_base=emulator.url, **options)
    assert isinstance(response, ModelResponse)
    return response


async def collect(client: AsyncClient, emulator: Any, model: str, **options: Any) -> list[ModelResponseStream]:
    messages = options.pop("messages", MESSAGES)
    stream = await client.completion(
        f"gemini/{model}", messages, api_base=emulator.url, api_key="test", stream=True, **options
    )
    assert isinstance(stream, CompletionStream)
    chunks: list[ModelResponseStream] = []
    async with stream:
        async for chunk in stream:
            chunks.append(chunk)
            assert len(chunks) < 1000
    return chunks


def text_of(chunks: list[ModelResponseStream]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def finishes(chunks: list[ModelResponseStream]) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


async def test_plain_completion(client: AsyncClient, emulator: Any) -> None:
    response = await complete(client, emulator, MODEL, temperature=0.2, max_tokens=64, stop=["END"], seed=1)
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: hello brave new world"
    assert choice.finish_reason == "stop"
    assert response.usage is not None
    assert response.usage.completion_tokens == 5
    assert response.usage.prompt_tokens > 0
    assert response.usage.total_tokens == response.usage.prompt_tokens + 5
    assert response.model_dump()["object"] == "chat.completion"
    assert response.hidden_params["custom_llm_provider"] == "gemini"


async def test_streaming_with_usage(client: AsyncClient, emulator: Any) -> None:
    chunks = await collect(client, emulator, f"{MODEL}-chunks-3", stream_options={"include_usage": True})
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text_of(chunks) == "Echo: hello brave new world"
    assert sum(1 for c in chunks if c.has_content()) == 3
    assert len({(c.id, c.created, c.model) for c in chunks}) == 1
    assert finishes(chunks) == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])


async def test_streaming_without_usage(client: AsyncClient, emulator: Any) -> None:
    chunks = await collect(client, emulator, MODEL)
    assert text_of(chunks) == "Echo: hello brave new world"
    assert all(c.usage is None for c in chunks)
    assert finishes(chunks) == ["stop"]


async def test_tool_call_and_result(client: AsyncClient, emulator: Any) -> None:
    response = await complete(client, emulator, f"{MODEL}-tool", tools=[SEARCH_TOOL], tool_choice="required")
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id
    assert call.function.name == "search"
    assert orjson.loads(call.function.arguments) == {"query": "emulated"}

    followup = [
        *MESSAGES,
        choice.message.model_dump(),
        {"role": "tool", "tool_call_id": call.id, "content": "nothing found"},
        {"role": "user", "content": "thanks"},
    ]
    again = await complete(client, emulator, MODEL, messages=followup, tools=[SEARCH_TOOL])
    assert again.choices[0].message.content == "Echo: thanks"


async def test_tool_call_streaming(client: AsyncClient, emulator: Any) -> None:
    chunks = await collect(client, emulator, f"{MODEL}-tool", tools=[SEARCH_TOOL])
    fragments = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert fragments[0]["index"] == 0
    assert fragments[0]["id"]
    assert fragments[0]["function"]["name"] == "search"
    arguments = "".join(f["function"]["arguments"] for f in fragments if f["index"] == 0)
    assert orjson.loads(arguments) == {"query": "emulated"}
    assert finishes(chunks) == ["tool_calls"]


async def test_bad_key_is_authentication_error(client: AsyncClient, emulator: Any) -> None:
    # Gemini answers an invalid key with 400 INVALID_ARGUMENT / API_KEY_INVALID; callers get a 401 error
    with pytest.raises(AuthenticationError) as info:
        await complete(client, emulator, MODEL, api_key="bad-key")
    assert info.value.status_code == 401
    assert info.value.code == "API_KEY_INVALID"
    assert "API key not valid" in info.value.message
    assert info.value.provider == "gemini"
    assert "bad-key" not in str(info.value)


async def test_missing_key_fails_before_any_request(client: AsyncClient, emulator: Any) -> None:
    before = await emulator.astats()
    with pytest.raises(AuthenticationError, match="GEMINI_API_KEY"):
        await client.completion(f"gemini/{MODEL}", MESSAGES, api_base=emulator.url)
    assert (await emulator.astats())["received"] == before["received"]


async def test_not_found(client: AsyncClient, emulator: Any) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        await complete(client, emulator, f"{MODEL}-status-404")


async def test_rate_limit_without_retries(client: AsyncClient, emulator: Any) -> None:
    with pytest.raises(RateLimitError) as info:
        await complete(client, emulator, f"{MODEL}-status-429-retryafter-1")
    assert info.value.status_code == 429
    assert info.value.retry_after == 1.0
    assert info.value.code == "RESOURCE_EXHAUSTED"


async def test_rate_limit_retry_honours_retry_after(client: AsyncClient, emulator: Any) -> None:
    model = f"{MODEL}-geminiretry-status-429-retryafterms-300-times-1"
    before = await emulator.astats()
    started = time.perf_counter()
    response = await complete(client, emulator, model, num_retries=2)
    elapsed = time.perf_counter() - started
    assert response.choices[0].message.content == "Echo: hello brave new world"
    assert elapsed >= 0.3  # waited as told before the second attempt
    assert (await emulator.astats())["received"] - before["received"] == 2


async def test_rate_limit_retry_on_stream_open(client: AsyncClient, emulator: Any) -> None:
    model = f"{MODEL}-geministreamretry-status-429-retryafterms-100-times-1"
    chunks = await collect(client, emulator, model, num_retries=1)
    assert text_of(chunks) == "Echo: hello brave new world"


async def test_midstream_error_raises_stream_error(client: AsyncClient, emulator: Any) -> None:
    stream = await client.completion(
        f"gemini/{MODEL}-fault-midstream", MESSAGES, api_base=emulator.url, api_key="test", stream=True
    )
    assert isinstance(stream, CompletionStream)
    received: list[ModelResponseStream] = []
    with pytest.raises(StreamError, match="internal error") as info:
        async with stream:
            async for chunk in stream:
                received.append(chunk)
                assert len(received) < 100
    assert any(c.has_content() for c in received)  # the chunks before the error were delivered
    assert info.value.provider == "gemini"


async def test_truncated_stream_raises_stream_error(client: AsyncClient, emulator: Any) -> None:
    with pytest.raises(StreamError, match="truncated"):
        await collect(client, emulator, f"{MODEL}-fault-truncate")


async def test_malformed_stream_raises_stream_error(client: AsyncClient, emulator: Any) -> None:
    with pytest.raises(StreamError, match="malformed"):
        await collect(client, emulator, f"{MODEL}-fault-malformed")
