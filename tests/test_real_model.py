"""End to end against a real model (SmolLM2-135M under xllamacpp): shape, streaming, usage, cancellation.

The model's text is nonsense beyond a sentence, so nothing here asserts on content.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

import llmplex
from llmplex import CompletionStream, ModelResponse, SyncStream
from tests.fixtures_real_llm import RealLLM

pytestmark = pytest.mark.real_llm

MESSAGES = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture(params=["openai", "anthropic"])
def provider(request: pytest.FixtureRequest) -> str:
    result: str = request.param
    return result


@pytest.fixture(params=["async", "sync"])
def mode(request: pytest.FixtureRequest) -> str:
    result: str = request.param
    return result


def call_args(real_llm: RealLLM, provider: str, **extra: Any) -> dict[str, Any]:
    """Arguments for one call through ``provider``'s path: OpenAI at /v1, Anthropic Messages at the root."""
    if provider == "openai":
        path: dict[str, Any] = {"messages": MESSAGES, "api_base": real_llm.openai_base}
    else:
        path = {"messages": [{"role": "system", "content": "Answer briefly."}, *MESSAGES], "api_base": real_llm.url}
    return {
        "model": f"{provider}/{real_llm.model}",
        **path,
        "api_key": "none",
        "max_tokens": 16,
        "temperature": 0,
        "timeout": 60,
        **extra,
    }


def assert_completion(response: ModelResponse, max_tokens: int) -> None:
    assert isinstance(response, ModelResponse)
    ChatCompletion.model_validate(response.model_dump())
    assert response.object == "chat.completion"
    assert response.choices[0].message.role == "assistant"
    assert isinstance(response.choices[0].message.content, str)
    assert response.choices[0].message.content
    assert response.choices[0].finish_reason in ("stop", "length")
    usage = response.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= max_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def assert_stream(chunks: list[llmplex.ModelResponseStream], max_tokens: int) -> None:
    assert chunks, "no chunks"
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk.model_dump())
        assert chunk.object == "chat.completion.chunk"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes in (["stop"], ["length"])
    usage = chunks[-1].usage
    assert usage is not None, "include_usage asked for a usage chunk"
    assert 0 < usage.completion_tokens <= max_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_completion(real_llm: RealLLM, provider: str, mode: str) -> None:
    max_tokens = 8 if mode == "sync" else 16
    args = call_args(real_llm, provider, max_tokens=max_tokens)
    if mode == "async":
        response: object = await llmplex.acompletion(**args)
    else:  # the blocking facade, from a thread with no event loop of its own
        response = await asyncio.to_thread(llmplex.completion, **args)
    assert isinstance(response, ModelResponse)
    assert_completion(response, max_tokens)
    assert response.hidden_params["custom_llm_provider"] == provider
    assert response["choices"][0]["message"]["content"] == response.choices[0].message.content
    assert response.model == real_llm.model


async def test_stream(real_llm: RealLLM, provider: str, mode: str) -> None:
    args = call_args(real_llm, provider, stream=True, stream_options={"include_usage": True})
    if mode == "async":
        stream = await llmplex.acompletion(**args)
        assert isinstance(stream, CompletionStream)
        async with stream:
            chunks = [chunk async for chunk in stream]
    else:
        chunks = await asyncio.to_thread(read_sync_stream, args)
    assert_stream(chunks, 16)


def read_sync_stream(args: dict[str, Any]) -> list[llmplex.ModelResponseStream]:
    stream = llmplex.completion(**args)
    assert isinstance(stream, SyncStream)
    with stream:
        return list(stream)


async def test_openai_concurrent_requests(real_llm: RealLLM) -> None:
    responses = await asyncio.gather(
        *(llmplex.acompletion(**call_args(real_llm, "openai", max_tokens=8)) for _ in range(3))
    )
    ids = set()
    for response in responses:
        assert isinstance(response, ModelResponse)
        assert_completion(response, 8)
        ids.add(response.id)
    assert len(ids) == 3


async def test_closing_a_stream_cancels_the_task_upstream(real_llm: RealLLM) -> None:
    since = real_llm.log_size()
    messages = [{"role": "user", "content": "Write a very long story about a dragon and a knight."}]
    stream = await llmplex.acompletion(
        **call_args(real_llm, "openai", messages=messages, stream=True, max_tokens=400, temperature=0.8)
    )
    assert isinstance(stream, CompletionStream)
    received = 0
    async for chunk in stream:
        if chunk.has_content():
            received += 1
        if received >= 3:
            break
    started = time.monotonic()
    await stream.aclose()
    log = await real_llm.wait_for_log("cancel task", since=since, timeout=10)
    assert "cancel task" in log, f"server did not cancel the generation; log since start:\n{log[-2000:]}"
    assert time.monotonic() - started < 10
    # the slot is free again: a new request is answered
    response = await llmplex.acompletion(**call_args(real_llm, "openai", max_tokens=4))
    assert isinstance(response, ModelResponse)
