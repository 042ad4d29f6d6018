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


def openai_args(real_llm: RealLLM, **extra: Any) -> dict[str, Any]:
    return {
        "model": f"openai/{real_llm.model}",
        "messages": MESSAGES,
        "api_base": real_llm.openai_base,
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


async def test_openai_acompletion(real_llm: RealLLM) -> None:
    response = await llmplex.acompletion(**openai_args(real_llm))
    assert isinstance(response, ModelResponse)
    assert_completion(response, 16)
    assert response.model == real_llm.model
    assert response.hidden_params["custom_llm_provider"] == "openai"
    assert response["choices"][0]["message"]["content"] == response.choices[0].message.content


def test_openai_completion_sync(real_llm: RealLLM) -> None:
    response = llmplex.completion(**openai_args(real_llm))
    assert isinstance(response, ModelResponse)
    assert_completion(response, 16)


async def test_openai_acompletion_stream(real_llm: RealLLM) -> None:
    stream = await llmplex.acompletion(**openai_args(real_llm, stream=True, stream_options={"include_usage": True}))
    assert isinstance(stream, CompletionStream)
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert_stream(chunks, 16)


def test_openai_completion_stream_sync(real_llm: RealLLM) -> None:
    stream = llmplex.completion(**openai_args(real_llm, stream=True, stream_options={"include_usage": True}))
    assert isinstance(stream, SyncStream)
    with stream:
        chunks = list(stream)
    assert_stream(chunks, 16)


async def test_openai_concurrent_requests(real_llm: RealLLM) -> None:
    responses = await asyncio.gather(*(llmplex.acompletion(**openai_args(real_llm, max_tokens=8)) for _ in range(3)))
    for response in responses:
        assert isinstance(response, ModelResponse)
        assert_completion(response, 8)
    assert len({r.id for r in responses}) == 3


async def test_closing_a_stream_cancels_the_task_upstream(real_llm: RealLLM) -> None:
    since = real_llm.log_size()
    messages = [{"role": "user", "content": "Write a very long story about a dragon and a knight."}]
    stream = await llmplex.acompletion(
        **openai_args(real_llm, messages=messages, stream=True, max_tokens=400, temperature=0.8)
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
    response = await llmplex.acompletion(**openai_args(real_llm, max_tokens=4))
    assert isinstance(response, ModelResponse)


# --- the Anthropic Messages path, against llama.cpp's /v1/messages ---------------------------------


def anthropic_args(real_llm: RealLLM, **extra: Any) -> dict[str, Any]:
    return {
        "model": f"anthropic/{real_llm.model}",
        "messages": [{"role": "system", "content": "Answer briefly."}, *MESSAGES],
        "api_base": real_llm.url,
        "api_key": "none",
        "max_tokens": 16,
        "temperature": 0,
        "timeout": 60,
        **extra,
    }


async def test_anthropic_acompletion(real_llm: RealLLM) -> None:
    response = await llmplex.acompletion(**anthropic_args(real_llm))
    assert isinstance(response, ModelResponse)
    assert_completion(response, 16)
    assert response.hidden_params["custom_llm_provider"] == "anthropic"


def test_anthropic_completion_sync(real_llm: RealLLM) -> None:
    response = llmplex.completion(**anthropic_args(real_llm, max_tokens=8))
    assert isinstance(response, ModelResponse)
    assert_completion(response, 8)


async def test_anthropic_acompletion_stream(real_llm: RealLLM) -> None:
    stream = await llmplex.acompletion(**anthropic_args(real_llm, stream=True, stream_options={"include_usage": True}))
    assert isinstance(stream, CompletionStream)
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert_stream(chunks, 16)


def test_anthropic_completion_stream_sync(real_llm: RealLLM) -> None:
    stream = llmplex.completion(**anthropic_args(real_llm, stream=True, stream_options={"include_usage": True}))
    assert isinstance(stream, SyncStream)
    with stream:
        chunks = list(stream)
    assert_stream(chunks, 16)
