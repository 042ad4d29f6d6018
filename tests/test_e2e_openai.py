"""OpenAI and Azure end to end, beyond the scenarios every provider shares (``test_e2e_providers.py``):
parity with the openai SDK, the OpenAI error bodies, disconnects, Azure routes and the sync entry points.
The openai SDK reads the same responses as a reference client, never as part of llmplex."""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion

import llmplex
from llmplex import (
    APIStatusError,
    AsyncClient,
    AuthenticationError,
    ClientConfig,
    CompletionStream,
    InternalServerError,
    ModelResponse,
    NotFoundError,
    RateLimitError,
    SyncStream,
)
from tests import e2e_calls
from tests.e2e_calls import ECHO, MESSAGES


@pytest.fixture
async def client() -> AsyncIterator[AsyncClient]:
    async with AsyncClient(ClientConfig.from_env({}), num_retries=0, timeout=10.0) as c:
        yield c


async def complete(client: AsyncClient, emulator: Any, model: str, **options: Any) -> ModelResponse:
    return await e2e_calls.complete(client, f"openai/{model}", emulator.openai_base, **options)


async def test_dump_equals_what_the_openai_sdk_reads(client: AsyncClient, emulator: Any) -> None:
    ours = await complete(client, emulator, "gpt-4o-mini")
    async with openai.AsyncOpenAI(base_url=emulator.openai_base, api_key="test", max_retries=0) as sdk:
        theirs = await sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    mine, reference = ours.model_dump(), theirs.model_dump(exclude_unset=True)
    for key in ("id", "created"):
        mine.pop(key), reference.pop(key)
    assert mine == reference


@pytest.mark.parametrize(
    ("model", "api_key", "cls", "status"),
    [
        ("gpt-4o", "bad-key", AuthenticationError, 401),
        ("gpt-4o-status-404", "test", NotFoundError, 404),
        ("gpt-4o-status-429", "test", RateLimitError, 429),
        ("gpt-4o-status-500", "test", InternalServerError, 500),
    ],
)
async def test_errors(
    client: AsyncClient, emulator: Any, model: str, api_key: str, cls: type[APIStatusError], status: int
) -> None:
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
    assert response.choices[0].message.content == ECHO
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
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ECHO
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
    assert text == ECHO


def test_environment_key_and_base(emulator: Any) -> None:
    env = {"OPENAI_API_KEY": "test", "OPENAI_BASE_URL": emulator.openai_base}
    with llmplex.Client(ClientConfig.from_env(env)) as c:
        response = c.completion("gpt-4o", MESSAGES)
    assert isinstance(response, ModelResponse)


async def test_cost_is_priced_lazily_and_the_response_is_not_a_cycle(client: AsyncClient, emulator: Any) -> None:
    """The lazy cost needs no reference back to the response: a dropped response is freed at once by
    reference counting, not left for the cyclic garbage collector (which costs every batch dearly)."""
    response = await complete(client, emulator, "gpt-4o-mini")
    cost = response.hidden_params["response_cost"]
    assert cost > 0
    assert llmplex.completion_cost(response) == pytest.approx(cost)

    gc.disable()
    try:
        fresh = await complete(client, emulator, "gpt-4o-mini")
        alive = weakref.ref(fresh)
        del fresh
        assert alive() is None
    finally:
        gc.enable()
