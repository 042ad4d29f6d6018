"""OpenAI and Azure end to end: ``llmplex`` -> real HTTP -> the emulator. The openai SDK reads the same
responses as a reference client (parity), never as part of llmplex."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

import llmplex
from llmplex import (
    AsyncClient,
    AuthenticationError,
    ClientConfig,
    CompletionStream,
    InternalServerError,
    ModelResponse,
    ModelResponseStream,
    NotFoundError,
    RateLimitError,
    StreamError,
    SyncStream,
)

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
    async with AsyncClient(ClientConfig.from_env({}), num_retries=0, timeout=10.0) as c:
        yield c


async def complete(client: AsyncClient, emulator: Any, model: str, **options: Any) -> ModelResponse:
    options.setdefault("api_key", "test")
    response = await client.completion(f"openai/{model}", MESSAGES, api_base=emulator.openai_base, **options)
    assert isinstance(response, ModelResponse)
    return response


async def collect(client: AsyncClient, emulator: Any, model: str, **options: Any) -> list[ModelResponseStream]:
    stream = await client.completion(
        f"openai/{model}", MESSAGES, api_base=emulator.openai_base, api_key="test", stream=True, **options
    )
    assert isinstance(stream, CompletionStream)
    async with stream:
        return [chunk async for chunk in stream]


async def test_plain(client: AsyncClient, emulator: Any) -> None:
    response = await complete(client, emulator, "gpt-4o-mini", temperature=0)
    ChatCompletion.model_validate(response.model_dump())
    assert response.choices[0].message.content == "Echo: hello brave new world"
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None
    assert response.usage.completion_tokens == 5
    assert response.usage.total_tokens == response.usage.prompt_tokens + 5
    assert response.model == "gpt-4o-mini"
    assert response["choices"][0]["message"]["role"] == "assistant"


async def test_dump_equals_what_the_openai_sdk_reads(client: AsyncClient, emulator: Any) -> None:
    ours = await complete(client, emulator, "gpt-4o-mini")
    async with openai.AsyncOpenAI(base_url=emulator.openai_base, api_key="test", max_retries=0) as sdk:
        theirs = await sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    mine, reference = ours.model_dump(), theirs.model_dump(exclude_unset=True)
    for key in ("id", "created"):
        mine.pop(key), reference.pop(key)
    assert mine == reference


async def test_stream_with_include_usage(client: AsyncClient, emulator: Any) -> None:
    chunks = await collect(client, emulator, "gpt-4o-mini-chunks-4", stream_options={"include_usage": True})
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk.model_dump())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: hello brave new world"
    assert sum(1 for c in chunks if c.has_content()) == 4
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 5
    assert len({c.id for c in chunks}) == 1


async def test_stream_without_include_usage_has_no_usage_chunk(client: AsyncClient, emulator: Any) -> None:
    chunks = await collect(client, emulator, "gpt-4o-mini")
    assert all(c.usage is None for c in chunks)


async def test_tool_call(client: AsyncClient, emulator: Any) -> None:
    response = await complete(client, emulator, "gpt-4o-tool", tools=[SEARCH_TOOL], tool_choice="auto")
    ChatCompletion.model_validate(response.model_dump())
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "search"
    assert json.loads(call.function.arguments) == {"query": "emulated"}
    assert call.id


async def test_tool_call_streamed(client: AsyncClient, emulator: Any) -> None:
    chunks = await collect(client, emulator, "gpt-4o-tool", tools=[SEARCH_TOOL])
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas and deltas[0]["function"]["name"] == "search"
    arguments = "".join(tc["function"].get("arguments") or "" for tc in deltas)
    assert json.loads(arguments) == {"query": "emulated"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


@pytest.mark.parametrize(
    ("model", "api_key", "cls", "status"),
    [
        ("gpt-4o", "bad-key", AuthenticationError, 401),
        ("gpt-4o-status-404", "test", NotFoundError, 404),
        ("gpt-4o-status-429", "test", RateLimitError, 429),
        ("gpt-4o-status-500", "test", InternalServerError, 500),
    ],
)
async def test_errors(client: AsyncClient, emulator: Any, model: str, api_key: str, cls: type, status: int) -> None:
    with pytest.raises(cls) as info:
        await complete(client, emulator, model, api_key=api_key)
    err = info.value
    assert err.status_code == status
    assert err.provider == "openai" and err.model == model
    assert isinstance(err.body, dict) and "error" in err.body
    assert err.message and err.message == err.body["error"]["message"]
    assert "bad-key" not in str(err)
    with pytest.raises(cls):  # a stream fails the same way, before its first chunk
        await client.completion(
            f"openai/{model}", MESSAGES, api_base=emulator.openai_base, api_key=api_key, stream=True
        )


async def test_rate_limit_retry_after_then_success(emulator: Any) -> None:
    await emulator.areset()
    async with AsyncClient(ClientConfig.from_env({})) as c:
        response = await c.completion(
            "openai/gpt-4o-status-429-retryafterms-50-times-2",
            MESSAGES,
            api_base=emulator.openai_base,
            api_key="test",
            num_retries=2,
        )
    assert isinstance(response, ModelResponse)
    assert response.choices[0].message.content == "Echo: hello brave new world"


@pytest.mark.parametrize("fault", ["midstream", "truncate", "malformed"])
async def test_stream_faults(client: AsyncClient, emulator: Any, fault: str) -> None:
    with pytest.raises(StreamError):
        await collect(client, emulator, f"gpt-4o-fault-{fault}")


async def test_early_close_is_a_disconnect_upstream(client: AsyncClient, emulator: Any) -> None:
    await emulator.areset()
    stream = await client.completion(
        "openai/gpt-4o-chunks-50-chunkdelay-50", MESSAGES, api_base=emulator.openai_base, api_key="test", stream=True
    )
    assert isinstance(stream, CompletionStream)
    async with stream:
        await anext(stream)
        await anext(stream)
    stats = await emulator.wait_for(lambda s: s["disconnected"] == 1, timeout=5)
    assert stats["completed"] == 0


async def test_azure_deployment_url(client: AsyncClient, emulator: Any) -> None:
    response = await client.completion(
        "azure/my-gpt4o-deployment", MESSAGES, api_base=emulator.url, api_key="test", api_version="2024-10-21"
    )
    assert isinstance(response, ModelResponse)
    ChatCompletion.model_validate(response.model_dump())
    assert response.choices[0].message.content == "Echo: hello brave new world"
    assert response.hidden_params["custom_llm_provider"] == "azure"


async def test_azure_stream_and_errors(client: AsyncClient, emulator: Any) -> None:
    stream = await client.completion(
        "azure/dep-chunks-3",
        MESSAGES,
        api_base=emulator.url,
        api_key="test",
        stream=True,
        stream_options={"include_usage": True},
    )
    assert isinstance(stream, CompletionStream)
    async with stream:
        chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: hello brave new world"
    with pytest.raises(AuthenticationError):
        await client.completion("azure/dep", MESSAGES, api_base=emulator.url, api_key="bad-key")
    with pytest.raises(RateLimitError):
        await client.completion("azure/dep-status-429", MESSAGES, api_base=emulator.url, api_key="test")


def test_sync_module_function(emulator: Any) -> None:
    response = llmplex.completion("openai/gpt-4o", MESSAGES, api_base=emulator.openai_base, api_key="test")
    assert isinstance(response, ModelResponse)
    stream = llmplex.completion("openai/gpt-4o", MESSAGES, api_base=emulator.openai_base, api_key="test", stream=True)
    assert isinstance(stream, SyncStream)
    with stream:
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Echo: hello brave new world"


def test_environment_key_and_base(emulator: Any) -> None:
    env = {"OPENAI_API_KEY": "test", "OPENAI_BASE_URL": emulator.openai_base}
    with llmplex.Client(ClientConfig.from_env(env)) as c:
        response = c.completion("gpt-4o", MESSAGES)
    assert isinstance(response, ModelResponse)
