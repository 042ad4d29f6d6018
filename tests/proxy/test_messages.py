"""/v1/messages and /v1/messages/count_tokens through the proxy, with the anthropic SDK: relayed to an Anthropic
upstream, translated for an OpenAI one; streaming event order, tools, races, errors in Anthropic's format."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model

KEY = "sk-proxy-test"
USER: Any = [{"role": "user", "content": "hello there"}]
TOOLS: Any = [{"name": "search", "description": "Search", "input_schema": {"type": "object", "properties": {}}}]
EVENT_ORDER_START = ["message_start", "ping", "content_block_start"]


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    base = emulator.openai_base

    def claude(name: str, model: str) -> dict[str, Any]:
        return {
            "model_name": name,
            "litellm_params": {"model": f"anthropic/{model}", "api_base": emulator.url, "api_key": "k"},
        }

    config = {
        "model_list": [
            openai_model("gpt-side", "gpt-side", base),
            openai_model("gpt-tool", "gpt-tool-chunks-3", base),
            openai_model("gpt-broken", "gpt-status-429", base),
            openai_model("gpt-slow", "gpt-slow-delay-1500", base),
            claude("claude-side", "claude-side"),
            claude("claude-tool", "claude-tool-chunks-3"),
            claude("claude-fast", "claude-fast-delay-20"),
            claude("claude-cut", "claude-cut-fault-truncate"),
        ],
        "general_settings": {"master_key": KEY},
    }
    return proxy_factory(config)


@pytest.fixture
async def claude(proxy: ProxyServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    # the anthropic SDK sends the proxy key as x-api-key
    async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key=KEY, max_retries=0, timeout=30) as client:
        yield client


@pytest.mark.parametrize("model", ["gpt-side", "claude-side"])
async def test_message(claude: anthropic.AsyncAnthropic, model: str) -> None:
    message = await claude.messages.create(model=model, max_tokens=50, messages=USER, system="be brief")
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text == "Echo: hello there"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3 and message.usage.input_tokens >= 2
    raw = await claude.messages.with_raw_response.create(model=model, max_tokens=50, messages=USER)
    assert raw.headers["x-llmplex-model"] == model
    assert raw.request_id  # the SDK reads "request-id"


@pytest.mark.parametrize("model", ["gpt-side", "claude-side"])
async def test_stream_event_order(claude: anthropic.AsyncAnthropic, model: str) -> None:
    names: list[str] = []
    async with claude.messages.stream(model=model, max_tokens=50, messages=USER) as stream:
        async for event in stream:
            names.append(event.type)
        final = await stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == "Echo: hello there"
    assert final.stop_reason == "end_turn"
    raw = [n for n in names if n not in ("text",)]  # the SDK adds its own "text" events
    assert raw[0] == "message_start"
    assert raw[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert "content_block_delta" in raw


@pytest.mark.parametrize("model", ["gpt-tool", "claude-tool"])
async def test_tools_round_trip(claude: anthropic.AsyncAnthropic, model: str) -> None:
    async with claude.messages.stream(model=model, max_tokens=50, messages=USER, tools=TOOLS) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    call = final.content[-1]
    assert call.type == "tool_use" and call.name == "search" and call.input == {"query": "emulated"}
    # the tool result goes back as the next user turn
    history: Any = [
        *USER,
        {"role": "assistant", "content": [c.model_dump() for c in final.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "found it"}]},
    ]
    follow = await claude.messages.create(
        model=model.replace("tool", "side"), max_tokens=50, messages=history, tools=TOOLS
    )
    assert follow.content[0].type == "text"


@pytest.mark.parametrize("model", ["gpt-side", "claude-side"])
async def test_count_tokens(claude: anthropic.AsyncAnthropic, model: str) -> None:
    counted = await claude.messages.count_tokens(model=model, messages=USER)
    assert counted.input_tokens >= 1


async def test_race_fastest_first_token(claude: anthropic.AsyncAnthropic, emulator: EmulatorServer) -> None:
    raw = await claude.messages.with_raw_response.create(
        model="gpt-slow, claude-fast", max_tokens=20, messages=USER, extra_body={"fastest_response": True}
    )
    assert raw.headers["x-llmplex-model"] == "claude-fast"
    message = await raw.parse()
    assert message.content[0].type == "text"
    async with claude.messages.stream(
        model="gpt-slow, claude-fast", max_tokens=20, messages=USER, extra_body={"fastest_response": True}
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == "Echo: hello there"
    await emulator.wait_for(lambda s: s["disconnected"] >= 1)  # the slow loser was cut


async def test_errors_in_anthropic_format(proxy: ProxyServer, claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as info:
        await claude.messages.create(model="gpt-broken", max_tokens=5, messages=USER)
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError):
        await claude.messages.create(model="nope", max_tokens=5, messages=USER)
    async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key="wrong", max_retries=0) as bad:
        with pytest.raises(anthropic.AuthenticationError) as auth:
            await bad.messages.create(model="gpt-side", max_tokens=5, messages=USER)
        assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


@pytest.mark.parametrize(
    "body",
    [
        {"model": "gpt-side", "messages": [{"role": "user", "content": "x"}]},  # no max_tokens
        {"model": "gpt-side", "max_tokens": 5, "messages": []},
        {"model": "gpt-side", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
        {"model": "gpt-side, claude-side", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
        {
            "model": "gpt-side",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        },
    ],
)
async def test_bad_bodies_are_400_before_any_upstream_call(
    proxy: ProxyServer, emulator: EmulatorServer, body: dict[str, Any]
) -> None:
    await emulator.areset()
    async with (
        aiohttp.ClientSession() as http,
        http.post(proxy.url + "/v1/messages", json=body, headers={"x-api-key": KEY}) as resp,
    ):
        assert resp.status == 400
        error = await resp.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert (await emulator.astats())["received"] == 0


async def test_a_relayed_stream_cut_before_message_stop_ends_with_an_error_event(
    claude: anthropic.AsyncAnthropic,
) -> None:
    # the upstream ends its stream cleanly after two chunks, without message_stop: relayed as a clean end, the
    # client would take the truncated answer for a whole one; the proxy adds Anthropic's error event
    with pytest.raises(anthropic.APIStatusError, match="ended before message_stop"):
        async with claude.messages.stream(model="claude-cut", max_tokens=50, messages=USER) as stream:
            async for _ in stream:
                pass
