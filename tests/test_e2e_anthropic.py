"""Anthropic end to end, beyond the scenarios every provider shares (``test_e2e_providers.py``):
JSON mode, retry exhaustion, 529 overloaded, and parity with the official ``anthropic`` SDK.

The SDK is used only as a reference client talking to the same emulator, never by llmplex.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import orjson
import pytest

from llmplex import AsyncClient
from llmplex.config import ClientConfig
from llmplex.exceptions import AuthenticationError, RateLimitError, ServiceUnavailableError
from llmplex.types import ModelResponse, ModelResponseStream
from tests import e2e_calls
from tests.e2e_calls import MESSAGES, SEARCH_TOOL, text_of

MODEL = "claude-3-5-sonnet-20241022"


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
    return await e2e_calls.complete(client, f"anthropic/{model}", emulator.url, **options)


async def collect(client: AsyncClient, emulator: Any, model: str, **options: Any) -> list[ModelResponseStream]:
    return await e2e_calls.collect(client, f"anthropic/{model}", emulator.url, **options)


async def test_json_mode_answers_in_content(client: AsyncClient, emulator: Any) -> None:
    # JSON mode rides on a forced tool; the emulator's `tool` directive answers it like Claude would
    response = await complete(client, emulator, f"{MODEL}-tool", response_format={"type": "json_object"})
    assert orjson.loads(response.choices[0].message.content or "") == {"query": "emulated"}
    assert response.choices[0].message.tool_calls is None
    assert response.choices[0].finish_reason == "stop"
    chunks = await collect(client, emulator, f"{MODEL}-tool", response_format={"type": "json_object"})
    assert orjson.loads(text_of(chunks)) == {"query": "emulated"}
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)


async def test_rate_limit_retried_then_raised(client: AsyncClient, emulator: Any) -> None:
    model = f"{MODEL}-status-429-retryafterms-10-e2eanth"
    before = (await emulator.astats())["received"]
    with pytest.raises(RateLimitError) as info:
        await complete(client, emulator, model, num_retries=2)
    assert (await emulator.astats())["received"] - before == 3  # first try + 2 retries
    assert info.value.status_code == 429
    assert info.value.type == "rate_limit_error"


@pytest.mark.parametrize("stream", [False, True])
async def test_overloaded_529_is_service_unavailable(client: AsyncClient, emulator: Any, stream: bool) -> None:
    with pytest.raises(ServiceUnavailableError) as info:
        await client.completion(
            f"anthropic/{MODEL}-status-529", MESSAGES, api_base=emulator.url, api_key="test", stream=stream
        )
    assert info.value.status_code == 503
    assert info.value.type == "overloaded_error"


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
