"""``mock_response``: well-formed responses and streams with no network call (no server runs in this file)."""

from __future__ import annotations

import time

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

import llmplex
from llmplex import (
    AsyncClient,
    BadRequestError,
    ClientConfig,
    CompletionStream,
    ModelResponse,
    RateLimitError,
    SyncStream,
    UnknownModelError,
)

MESSAGES = [{"role": "user", "content": "say three words"}]


async def test_mock_text() -> None:
    # no api_key: a mocked call needs no endpoint
    response = await llmplex.acompletion("gpt-4o", MESSAGES, mock_response="Hello from mock")
    assert isinstance(response, ModelResponse)
    ChatCompletion.model_validate(response.model_dump())
    assert response.choices[0].message.content == "Hello from mock"
    assert response.choices[0].finish_reason == "stop"
    assert response.model == "gpt-4o"
    assert response.usage is not None
    assert response.usage.completion_tokens == 3
    assert response.usage.prompt_tokens == 3
    assert response.usage.total_tokens == 6
    assert response.hidden_params["mock"] is True
    assert response.hidden_params["custom_llm_provider"] == "openai"


def test_mock_sync() -> None:
    response = llmplex.completion("claude-3-haiku-20240307", MESSAGES, mock_response="hi")
    assert isinstance(response, ModelResponse)
    assert response.choices[0].message.content == "hi"
    assert response.hidden_params["custom_llm_provider"] == "anthropic"


async def test_mock_stream() -> None:
    stream = await llmplex.acompletion(
        "gpt-4o", MESSAGES, mock_response="a b c", stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(stream, CompletionStream)
    chunks = [chunk async for chunk in stream]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk.model_dump())
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "a b c"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_mock_stream_sync_without_usage() -> None:
    stream = llmplex.completion("gpt-4o", MESSAGES, mock_response="x y", stream=True)
    assert isinstance(stream, SyncStream)
    with stream:
        chunks = list(stream)
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "x y"


async def test_mock_exception() -> None:
    error = RateLimitError("mocked limit", provider="openai", model="gpt-4o")
    with pytest.raises(RateLimitError, match="mocked limit"):
        await llmplex.acompletion("gpt-4o", MESSAGES, mock_response=error)


async def test_mock_model_response_is_returned_as_is() -> None:
    canned = ModelResponse.build(model="canned", content="prepared")
    response = await llmplex.acompletion("gpt-4o", MESSAGES, mock_response=canned)
    assert response is canned


async def test_mock_delay() -> None:
    async with AsyncClient(ClientConfig.from_env({})) as client:
        started = time.monotonic()
        await client.completion("gpt-4o", MESSAGES, mock_response="x", mock_delay=0.2)
    assert time.monotonic() - started >= 0.2


async def test_mock_still_validates_the_call() -> None:
    with pytest.raises(UnknownModelError):
        await llmplex.acompletion("not-a-model", MESSAGES, mock_response="x")
    with pytest.raises(BadRequestError):
        await llmplex.acompletion("gpt-4o", [], mock_response="x")
    with pytest.raises(BadRequestError, match="mock_response"):
        await llmplex.acompletion("gpt-4o", MESSAGES, mock_response=42)


async def test_mock_cost_is_computed_lazily() -> None:
    response = await llmplex.acompletion("gpt-4o", MESSAGES, mock_response="one two three")
    assert isinstance(response, ModelResponse)
    cost = response.hidden_params["response_cost"]
    assert cost > 0
    assert llmplex.completion_cost(response) == pytest.approx(cost)
    assert llmplex.completion_cost(model="not-a-priced-model-xyz", prompt_tokens=10, completion_tokens=10) == 0.0
