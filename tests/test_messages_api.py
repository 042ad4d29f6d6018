"""messages_api against the emulator: relayed as is to an Anthropic upstream, translated for an OpenAI one."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llmplex import AsyncClient
from llmplex._sse import SSEDecoder
from llmplex.exceptions import RateLimitError
from llmplex.messages_api import count_tokens, messages

BODY: dict[str, Any] = {"model": "public-name", "max_tokens": 50, "messages": [{"role": "user", "content": "hi you"}]}
TOOLS = [{"name": "search", "description": "s", "input_schema": {"type": "object", "properties": {}}}]


def events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    decoder = SSEDecoder()
    out = []
    for event in [*decoder.feed(data), *decoder.flush()]:
        payload = orjson.loads(event.data)
        out.append((event.event or "", payload))
    return out


@pytest.mark.parametrize("target", ["anthropic", "openai"])
async def test_whole_answer(client: AsyncClient, emulator: Any, target: str) -> None:
    settings = {"api_key": "k", "api_base": emulator.url if target == "anthropic" else emulator.openai_base}
    answer = await messages(client, f"{target}/m", BODY, settings)
    assert answer.body is not None and answer.stream is None
    message = orjson.loads(answer.body)
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"] == [{"type": "text", "text": "Echo: hi you"}]
    assert message["stop_reason"] == "end_turn"
    assert answer.usage["output_tokens"] == 3


@pytest.mark.parametrize("target", ["anthropic", "openai"])
async def test_stream_with_tools(client: AsyncClient, emulator: Any, target: str) -> None:
    settings = {"api_key": "k", "api_base": emulator.url if target == "anthropic" else emulator.openai_base}
    body = {**BODY, "stream": True, "tools": TOOLS}
    answer = await messages(client, f"{target}/m-tool-chunks-3", body, settings)
    assert answer.stream is not None
    await answer.stream.peek_first_content()
    data = b"".join([part async for part in answer.stream])
    names = [name for name, _ in events(data)]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    starts = [p for n, p in events(data) if n == "content_block_start"]
    assert starts[-1]["content_block"]["type"] == "tool_use"
    partial = "".join(
        p["delta"]["partial_json"]
        for n, p in events(data)
        if n == "content_block_delta" and p["delta"]["type"] == "input_json_delta"
    )
    assert orjson.loads(partial) == {"query": "emulated"}
    final = next(p for n, p in events(data) if n == "message_delta")
    assert final["delta"]["stop_reason"] == "tool_use"


async def test_errors_are_typed(client: AsyncClient, emulator: Any) -> None:
    with pytest.raises(RateLimitError):
        await messages(client, "openai/m-status-429", BODY, {"api_key": "k", "api_base": emulator.openai_base})
    with pytest.raises(RateLimitError):
        await messages(client, "anthropic/m-status-429", BODY, {"api_key": "k", "api_base": emulator.url})


async def test_count_tokens_estimated_for_openai(client: AsyncClient, emulator: Any) -> None:
    body = orjson.loads(await count_tokens(client, "openai/m", BODY, {"api_key": "k", "api_base": emulator.url}))
    assert body["input_tokens"] >= 1
    assert (await emulator.astats())["received"] == 0


async def test_count_tokens_relayed_to_anthropic(client: AsyncClient, emulator: Any) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "one two three"}]}
    raw = await count_tokens(client, "anthropic/m", body, {"api_key": "k", "api_base": emulator.url})
    assert orjson.loads(raw) == {"input_tokens": 3}
