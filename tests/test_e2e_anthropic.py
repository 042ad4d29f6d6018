"""Anthropic end to end: ``llmplex.AsyncClient`` -> real HTTP -> the emulator's ``/v1/messages``.

The official ``anthropic`` SDK is used only as a reference client (parity), never by llmplex.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import orjson
import pytest

from llmplex import AsyncClient
from llmplex._streaming import CompletionStream
from llmplex.config import ClientConfig
from llmplex.exceptions import AuthenticationError, RateLimitError, ServiceUnavailableError, StreamError
from llmplex.types import ModelResponse, ModelResponseStream

MODEL = "claude-3-5-sonnet-20241022"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello brave new world"}]
SEARCH_TOOL: dict[str, Any] = {
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


@pytest.fixture
async def sdk(emulator: Any) -> AsyncIterator[anthropic.AsyncAnthropic]:
    c = anthropic.AsyncAnthropic(base_url=emulator.url, api_key="test", max_retries=0, timeout=10.0)
    try:
        yield c
    finally:
        await c.close()


async def complete(client: AsyncClient, emulator: Any, model: str, **options: Any) -> ModelResponse:
    options.setdefault("messages", MESSAGES)
    messages = options.pop("messages")
    response = await client.completion(f"anthropic/{model}", messages, api_base=emulator.url, api_key="test", **options)
    assert isinstance(response, ModelResponse)
    return response


async def collect(client: AsyncClient, emulator: Any, model: str, **options: Any) -> list[ModelResponseStream]:
    messages = options.pop("messages", MESSAGES)
    stream = await client.completion(
        f"anthropic/{model}", messages, api_base=emulator.url, api_key="test", stream=True, **options
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


async def test_plain_completion(client: AsyncClient, emulator: Any) -> None:
    response = await complete(client, emulator, MODEL, max_tokens=64)
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: hello brave new world"
    assert choice.finish_reason == "stop"
    assert response.usage is not None
    assert response.usage.completion_tokens == 5
    assert response.usage.prompt_tokens > 0
    assert response.usage.total_tokens == response.usage.prompt_tokens + 5
    dumped = response.model_dump()
    assert dumped["object"] == "chat.completion"
    assert dumped["system_fingerprint"] is None
    assert response.hidden_params["custom_llm_provider"] == "anthropic"


async def test_streaming_with_usage(client: AsyncClient, emulator: Any) -> None:
    chunks = await collect(client, emulator, f"{MODEL}-chunks-3", stream_options={"include_usage": True})
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text_of(chunks) == "Echo: hello brave new world"
    assert sum(1 for c in chunks if c.has_content()) == 3
    assert len({(c.id, c.created, c.model) for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])


async def test_streaming_without_usage(client: AsyncClient, emulator: Any) -> None:
    chunks = await collect(client, emulator, MODEL)
    assert text_of(chunks) == "Echo: hello brave new world"
    assert all(c.usage is None for c in chunks)


async def test_tool_call(client: AsyncClient, emulator: Any) -> None:
    response = await complete(client, emulator, f"{MODEL}-tool", tools=[SEARCH_TOOL], tool_choice="required")
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id
    assert call.function.name == "search"
    assert orjson.loads(call.function.arguments) == {"query": "emulated"}

    # the answer goes back as a tool result, in Anthropic's tool_result shape
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
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["tool_calls"]


async def test_json_mode_answers_in_content(client: AsyncClient, emulator: Any) -> None:
    # JSON mode rides on a forced tool; the emulator's `tool` directive answers it like Claude would
    response = await complete(client, emulator, f"{MODEL}-tool", response_format={"type": "json_object"})
    assert orjson.loads(response.choices[0].message.content or "") == {"query": "emulated"}
    assert response.choices[0].message.tool_calls is None
    assert response.choices[0].finish_reason == "stop"
    chunks = await collect(client, emulator, f"{MODEL}-tool", response_format={"type": "json_object"})
    assert orjson.loads(text_of(chunks)) == {"query": "emulated"}
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)


async def test_bad_key_is_authentication_error(client: AsyncClient, emulator: Any) -> None:
    with pytest.raises(AuthenticationError) as info:
        await client.completion(f"anthropic/{MODEL}", MESSAGES, api_base=emulator.url, api_key="bad-key")
    assert info.value.status_code == 401
    assert info.value.provider == "anthropic"
    assert info.value.type == "authentication_error"


async def test_rate_limit_retried_then_raised(client: AsyncClient, emulator: Any) -> None:
    model = f"{MODEL}-status-429-retryafterms-10-e2eanth"
    before = (await emulator.astats())["received"]
    with pytest.raises(RateLimitError) as info:
        await complete(client, emulator, model, num_retries=2)
    assert (await emulator.astats())["received"] - before == 3  # first try + 2 retries
    assert info.value.status_code == 429
    assert info.value.type == "rate_limit_error"


async def test_rate_limit_recovers_within_retries(client: AsyncClient, emulator: Any) -> None:
    await emulator.areset()  # times-N counters
    response = await complete(client, emulator, f"{MODEL}-status-429-retryafterms-10-times-2", num_retries=2)
    assert response.choices[0].message.content == "Echo: hello brave new world"


@pytest.mark.parametrize("stream", [False, True])
async def test_overloaded_529_is_service_unavailable(client: AsyncClient, emulator: Any, stream: bool) -> None:
    with pytest.raises(ServiceUnavailableError) as info:
        await client.completion(
            f"anthropic/{MODEL}-status-529", MESSAGES, api_base=emulator.url, api_key="test", stream=stream
        )
    assert info.value.status_code == 503
    assert info.value.type == "overloaded_error"


async def test_midstream_error_after_content(client: AsyncClient, emulator: Any) -> None:
    stream = await client.completion(
        f"anthropic/{MODEL}-fault-midstream", MESSAGES, api_base=emulator.url, api_key="test", stream=True
    )
    assert isinstance(stream, CompletionStream)
    seen: list[ModelResponseStream] = []
    async with stream:
        with pytest.raises(StreamError) as info:
            async for chunk in stream:
                seen.append(chunk)
                assert len(seen) < 100
    assert any(c.has_content() for c in seen)  # the chunks before the error event were delivered
    assert info.value.provider == "anthropic"
    assert info.value.type  # the Anthropic error type travels with the exception


async def test_truncated_stream(client: AsyncClient, emulator: Any) -> None:
    with pytest.raises(StreamError, match="truncated"):
        await collect(client, emulator, f"{MODEL}-fault-truncate")


# --- parity with the official anthropic SDK, talking to the same emulator ------------------------


async def test_parity_plain(client: AsyncClient, emulator: Any, sdk: anthropic.AsyncAnthropic) -> None:
    reference = await sdk.messages.create(
        model=MODEL, max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "hello brave new world"}]
    )
    ours = await complete(client, emulator, MODEL, max_tokens=64)
    reference_text = "".join(block.text for block in reference.content if block.type == "text")
    assert ours.choices[0].message.content == reference_text
    assert ours.id == reference.id or ours.id.startswith("chatcmpl-") or ours.id.startswith("msg_")
    assert ours.model == reference.model
    assert ours.usage is not None
    assert ours.usage.prompt_tokens == reference.usage.input_tokens
    assert ours.usage.completion_tokens == reference.usage.output_tokens
    assert reference.stop_reason == "end_turn"


async def test_parity_stream(client: AsyncClient, emulator: Any, sdk: anthropic.AsyncAnthropic) -> None:
    async with sdk.messages.stream(
        model=MODEL, max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "hello brave new world"}]
    ) as reference_stream:
        pieces = [text async for text in reference_stream.text_stream]
        final = await reference_stream.get_final_message()
    chunks = await collect(client, emulator, MODEL, stream_options={"include_usage": True})
    assert text_of(chunks) == "".join(pieces)
    assert [c.choices[0].delta.content for c in chunks if c.has_content()] == pieces
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (final.usage.input_tokens, final.usage.output_tokens)


async def test_parity_tool_use(client: AsyncClient, emulator: Any, sdk: anthropic.AsyncAnthropic) -> None:
    tool = SEARCH_TOOL["function"]
    reference = await sdk.messages.create(
        model=f"{MODEL}-tool",
        max_tokens=64,
        messages=[{"role": "user", "content": "hello brave new world"}],
        tools=[{"name": tool["name"], "description": tool["description"], "input_schema": tool["parameters"]}],
    )
    tool_use = next(block for block in reference.content if block.type == "tool_use")
    ours = await complete(client, emulator, f"{MODEL}-tool", tools=[SEARCH_TOOL])
    call = ours.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == tool_use.name
    assert orjson.loads(call.function.arguments) == tool_use.input
    assert reference.stop_reason == "tool_use"
    assert ours.choices[0].finish_reason == "tool_calls"


async def test_parity_errors(client: AsyncClient, emulator: Any, sdk: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.AuthenticationError) as reference:
        await sdk.with_options(api_key="bad-key").messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(AuthenticationError) as ours:
        await client.completion(f"anthropic/{MODEL}", MESSAGES, api_base=emulator.url, api_key="bad-key")
    body = reference.value.body
    assert isinstance(body, dict)
    assert ours.value.message == body["error"]["message"]
    assert ours.value.type == body["error"]["type"]
