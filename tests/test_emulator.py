"""The emulator speaks each provider's real wire format: the official SDKs and raw HTTP accept what it sends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from tests.fixtures_emulator import EmulatorServer, sse_events

USER: Any = [{"role": "user", "content": "hello there"}]  # Any: the SDKs type messages per provider
TOOLS: Any = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {}}}}]
ANTHROPIC_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


@pytest.fixture
async def oai(emulator: EmulatorServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=emulator.openai_base, api_key="k", max_retries=0, timeout=10) as client:
        yield client


@pytest.fixture
async def claude(emulator: EmulatorServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=emulator.url, api_key="k", max_retries=0, timeout=10) as client:
        yield client


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


# --- OpenAI, through the official SDK ---------------------------------------------------------------------------


async def test_openai_completion(oai: openai.AsyncOpenAI) -> None:
    response = await oai.chat.completions.create(model="gpt-x", messages=USER)
    assert response.object == "chat.completion"
    assert response.model == "gpt-x"
    assert response.choices[0].message.content == "Echo: hello there"
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) == (2, 3, 5)
    assert response._request_id is not None


async def test_openai_stream_with_usage(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="gpt-x-chunks-3",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    contents = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert contents == ["Echo:", " hello", " there"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])


async def test_openai_stream_without_usage_has_none(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(model="gpt-x", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    assert len(chunks) == 7 and all(chunk.usage is None and chunk.choices for chunk in chunks)


async def test_openai_tool_call(oai: openai.AsyncOpenAI) -> None:
    response = await oai.chat.completions.create(model="gpt-x-tool", messages=USER, tools=TOOLS)
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_")
    assert (call.function.name, json.loads(call.function.arguments)) == ("search", {"query": "emulated"})  # type: ignore[union-attr]

    stream = await oai.chat.completions.create(
        model="gpt-x-tool-chunks-4",
        messages=USER,
        tools=TOOLS,
        stream=True,
    )
    fragments, names, finish = [], [], None
    async for chunk in stream:
        delta = chunk.choices[0].delta
        for tool_call in delta.tool_calls or ():
            assert tool_call.index == 0
            names.append(tool_call.function.name if tool_call.function else None)
            fragments.append(tool_call.function.arguments if tool_call.function else "")
        finish = chunk.choices[0].finish_reason or finish
    assert names[0] == "search" and set(names[1:]) == {None}
    assert len(fragments) == 5  # the opening fragment (name, "") plus chunks-4 argument pieces
    assert json.loads("".join(f or "" for f in fragments)) == {"query": "emulated"}
    assert finish == "tool_calls"


@pytest.mark.parametrize(
    ("model", "api_key", "error_class", "code"),
    [
        ("gpt-status-400", "k", openai.BadRequestError, None),
        ("gpt-x", "bad-key", openai.AuthenticationError, "invalid_api_key"),
        ("gpt-status-403", "k", openai.PermissionDeniedError, "unsupported_country_region_territory"),
        ("gpt-status-404", "k", openai.NotFoundError, "model_not_found"),
        ("gpt-status-429-retryafter-3", "k", openai.RateLimitError, "rate_limit_exceeded"),
        ("gpt-status-503", "k", openai.InternalServerError, None),
    ],
)
async def test_openai_errors_map_to_sdk_classes(
    emulator: EmulatorServer, model: str, api_key: str, error_class: type[openai.APIStatusError], code: str | None
) -> None:
    async with openai.AsyncOpenAI(base_url=emulator.openai_base, api_key=api_key, max_retries=0) as client:
        with pytest.raises(error_class) as caught:
            await client.chat.completions.create(model=model, messages=USER)
    assert caught.value.code == code
    assert isinstance(caught.value.body, dict) and caught.value.body["message"]
    if "retryafter" in model:
        assert caught.value.response.headers["retry-after"] == "3"


async def test_openai_midstream_error_raises_api_error(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(model="gpt-fault-midstream", messages=USER, stream=True)
    received = []
    with pytest.raises(openai.APIError, match="server had an error"):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "Ech", "o: "]  # the role chunk and two of the five content chunks came first


async def test_header_directive_and_times(oai: openai.AsyncOpenAI, emulator: EmulatorServer) -> None:
    await emulator.areset()
    with pytest.raises(openai.RateLimitError):
        await oai.chat.completions.create(model="gpt-x", messages=USER, extra_headers={"x-emulator-status": "429"})
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await oai.chat.completions.create(model="flaky-status-500-times-2", messages=USER)
    response = await oai.chat.completions.create(model="flaky-status-500-times-2", messages=USER)
    assert response.choices[0].message.content == "Echo: hello there"


async def test_azure_through_the_sdk(emulator: EmulatorServer) -> None:
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=emulator.url, api_key="k", api_version="2024-10-21", max_retries=0
    ) as client:
        response = await client.chat.completions.create(model="dep-1", messages=USER)
        assert response.choices[0].message.content == "Echo: hello there"
        stream = await client.chat.completions.create(model="dep-1", messages=USER, stream=True)
        chunks = [chunk async for chunk in stream]
        assert chunks[0].choices == [] and chunks[0].id == ""  # Azure's prompt-filter opening chunk
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: hello there"
        with pytest.raises(openai.NotFoundError) as caught:
            await client.chat.completions.create(model="dep-status-404", messages=USER)
        assert caught.value.code == "DeploymentNotFound"
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=emulator.url, api_key="bad-key", api_version="2024-10-21", max_retries=0
    ) as client:
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model="dep-1", messages=USER)


# --- Anthropic, through the official SDK ------------------------------------------------------------------------


async def test_anthropic_message_and_stream(claude: anthropic.AsyncAnthropic) -> None:
    message = await claude.messages.create(model="claude-x", max_tokens=10, system="be brief", messages=USER)
    assert message.content[0].type == "text" and message.content[0].text == "Echo: hello there"
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == ("end_turn", 4, 3)
    async with claude.messages.stream(model="claude-x-chunks-2", max_tokens=10, messages=USER) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert pieces == ["Echo: he", "llo there"]
    assert final.content[0].text == "Echo: hello there"  # type: ignore[union-attr]
    assert (final.stop_reason, final.usage.input_tokens, final.usage.output_tokens) == ("end_turn", 2, 3)


async def test_anthropic_tool_use(claude: anthropic.AsyncAnthropic) -> None:
    tools: Any = [{"name": "search", "input_schema": {"type": "object"}}]
    message = await claude.messages.create(model="c-tool", max_tokens=10, messages=USER, tools=tools)
    block = message.content[0]
    assert message.stop_reason == "tool_use"
    assert block.type == "tool_use" and block.name == "search" and block.input == {"query": "emulated"}
    async with claude.messages.stream(model="c-tool-chunks-3", max_tokens=10, messages=USER, tools=tools) as stream:
        final = await stream.get_final_message()
    assert final.content[0].input == {"query": "emulated"}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"


@pytest.mark.parametrize(
    ("model", "api_key", "error_class", "error_type"),
    [
        ("claude-status-529", "k", anthropic.OverloadedError, "overloaded_error"),
        ("claude-status-429", "k", anthropic.RateLimitError, "rate_limit_error"),
        ("claude-status-404", "k", anthropic.NotFoundError, "not_found_error"),
        ("claude-x", "bad-key", anthropic.AuthenticationError, "authentication_error"),
        ("claude-status-500", "k", anthropic.InternalServerError, "api_error"),
    ],
)
async def test_anthropic_errors_map_to_sdk_classes(
    emulator: EmulatorServer, model: str, api_key: str, error_class: type[anthropic.APIStatusError], error_type: str
) -> None:
    async with anthropic.AsyncAnthropic(base_url=emulator.url, api_key=api_key, max_retries=0) as client:
        with pytest.raises(error_class) as caught:
            await client.messages.create(model=model, max_tokens=5, messages=USER)
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == error_type


async def test_anthropic_midstream_error_event(claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with claude.messages.stream(model="c-fault-midstream", max_tokens=5, messages=USER) as stream:
            async for _ in stream.text_stream:
                pass
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


async def test_anthropic_requires_max_tokens_and_version(http: aiohttp.ClientSession, emulator: EmulatorServer) -> None:
    body = {"model": "c", "messages": USER}
    async with http.post(emulator.url + "/v1/messages", json=body, headers=ANTHROPIC_HEADERS) as response:
        assert response.status == 400
        assert (await response.json())["error"]["message"] == "max_tokens: Field required"
    async with http.post(
        emulator.url + "/v1/messages", json={**body, "max_tokens": 5}, headers={"x-api-key": "k"}
    ) as response:
        assert response.status == 400


# --- Cohere v2 and Gemini, raw HTTP -----------------------------------------------------------------------------


async def test_cohere_stream_and_errors(http: aiohttp.ClientSession, emulator: EmulatorServer) -> None:
    url, auth = emulator.url + "/v2/chat", {"authorization": "Bearer k"}
    body = {"model": "command-r-chunks-2", "messages": USER, "stream": True}
    async with http.post(url, json=body, headers=auth) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(await response.text())
    assert [name for name, _ in events] == [json.loads(data)["type"] for _, data in events]
    assert [name for name, _ in events] == [
        "message-start",
        "content-start",
        "content-delta",
        "content-delta",
        "content-end",
        "message-end",
    ]
    end = json.loads(events[-1][1])["delta"]
    assert end["finish_reason"] == "COMPLETE" and end["usage"]["billed_units"] == {
        "input_tokens": 2,
        "output_tokens": 3,
    }
    tool_body = {"model": "command-r-tool", "messages": USER, "tools": TOOLS}
    async with http.post(url, json=tool_body, headers=auth) as response:
        reply = await response.json()
    assert reply["finish_reason"] == "TOOL_CALL"
    assert json.loads(reply["message"]["tool_calls"][0]["function"]["arguments"]) == {"query": "emulated"}
    async with http.post(url, json=body) as response:
        assert response.status == 401 and "message" in await response.json()


async def test_gemini_generate_stream_and_errors(http: aiohttp.ClientSession, emulator: EmulatorServer) -> None:
    base = emulator.url + "/v1beta/models/"
    body = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}
    key = {"x-goog-api-key": "k"}
    async with http.post(base + "gemini-x-chunks-2:streamGenerateContent?alt=sse", json=body, headers=key) as response:
        events = [json.loads(data) for _, data in sse_events(await response.text())]
    texts = [part["text"] for event in events for part in event["candidates"][0]["content"]["parts"]]
    assert "".join(texts) == "Echo: hello there"
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    assert events[-1]["usageMetadata"]["totalTokenCount"] == 5
    tool_body = {**body, "tools": [{"functionDeclarations": [{"name": "lookup"}]}]}
    async with http.post(base + "gemini-x-tool:generateContent?key=k", json=tool_body) as response:
        call = (await response.json())["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert call == {"name": "lookup", "args": {"query": "emulated"}}
    async with http.post(
        base + "gemini-x:generateContent", json=body, headers={"x-goog-api-key": "bad-key"}
    ) as response:
        error = (await response.json())["error"]
    assert response.status == 400 and error["status"] == "INVALID_ARGUMENT"
    assert error["details"][0]["reason"] == "API_KEY_INVALID"
    async with http.post(base + "gemini-status-429-retryafter-7:generateContent", json=body, headers=key) as response:
        error = (await response.json())["error"]
    assert (response.status, error["code"], error["status"]) == (429, 429, "RESOURCE_EXHAUSTED")
    assert error["details"][0]["retryDelay"] == "7s"


async def test_gemini_stream_without_alt_sse_is_a_json_array(
    http: aiohttp.ClientSession, emulator: EmulatorServer
) -> None:
    body = {"contents": [{"parts": [{"text": "hello there"}]}]}
    url = emulator.url + "/v1beta/models/gemini-x-chunks-3:streamGenerateContent"
    async with http.post(url, json=body, headers={"x-goog-api-key": "k"}) as response:
        assert response.headers["content-type"] == "application/json"
        elements = json.loads(await response.text())
    assert len(elements) == 4 and elements[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_raw_event_order_of_tool_streams(http: aiohttp.ClientSession, emulator: EmulatorServer) -> None:
    anthropic_body = {
        "model": "c-tool-chunks-2",
        "max_tokens": 5,
        "stream": True,
        "messages": USER,
        "tools": [{"name": "search", "input_schema": {"type": "object"}}],
    }
    async with http.post(emulator.url + "/v1/messages", json=anthropic_body, headers=ANTHROPIC_HEADERS) as response:
        names = [name for name, _ in sse_events(await response.text())]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 3,  # the empty opening fragment, then 2 pieces
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    cohere_body = {"model": "command-r-tool-chunks-2", "stream": True, "messages": USER, "tools": TOOLS}
    async with http.post(emulator.url + "/v2/chat", json=cohere_body, headers={"authorization": "Bearer k"}) as r:
        events = sse_events(await r.text())
    assert [name for name, _ in events] == [
        "message-start",
        "tool-plan-delta",
        "tool-call-start",
        "tool-call-delta",
        "tool-call-delta",
        "tool-call-end",
        "message-end",
    ]
    start = json.loads(events[2][1])["delta"]["message"]["tool_calls"]
    assert start["function"] == {"name": "search", "arguments": ""}
    assert json.loads(events[-1][1])["delta"]["finish_reason"] == "TOOL_CALL"
