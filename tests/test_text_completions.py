"""text_completion / atext_completion: the native /completions endpoint (emulator) and the chat translation."""

from __future__ import annotations

from typing import Any

import pytest

import llmplex
from llmplex import AsyncClient, Client, TextCompletionResponse, TextCompletionStream
from llmplex.exceptions import BadRequestError, RateLimitError, UnsupportedParamsError
from llmplex.text_completions import native_text_completion


def test_routing_rule() -> None:
    assert native_text_completion("text-completion-openai/gpt-4o")
    assert native_text_completion("openai/my-local-model")
    assert native_text_completion("gpt-3.5-turbo-instruct")
    assert native_text_completion("azure_text/dep")
    assert not native_text_completion("openai/gpt-4o")
    assert not native_text_completion("gpt-4o-mini")
    assert not native_text_completion("anthropic/claude-x")
    assert not native_text_completion("azure/dep")


async def test_native_completion(client: AsyncClient, up: dict[str, Any], emulator: Any) -> None:
    response = await client.text_completion("hello there", "text-completion-openai/m", max_tokens=5, **up)
    assert isinstance(response, TextCompletionResponse)
    assert response.object == "text_completion"
    assert response.choices[0].text == "Echo: hello there"
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None and response.usage.prompt_tokens == 2
    assert response.hidden_params["custom_llm_provider"] == "openai"
    assert (await emulator.astats())["received"] == 1


async def test_native_prompt_list_gives_one_choice_per_prompt(client: AsyncClient, up: dict[str, Any]) -> None:
    response = await client.text_completion(["a", "b c"], "openai/m", **up)
    assert [c.text for c in response.choices] == ["Echo: a", "Echo: b c"]
    assert [c.index for c in response.choices] == [0, 1]


async def test_native_stream(client: AsyncClient, up: dict[str, Any]) -> None:
    stream = await client.text_completion("one two", "openai/m-chunks-3", stream=True, **up)
    assert isinstance(stream, TextCompletionStream)
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Echo: one two"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.object == "text_completion" for c in chunks)


async def test_native_errors_are_typed(client: AsyncClient, up: dict[str, Any]) -> None:
    with pytest.raises(RateLimitError):
        await client.text_completion("x", "openai/m-status-429", **up)


async def test_through_chat(client: AsyncClient, up: dict[str, Any], emulator: Any) -> None:
    # gpt-4o is a chat model: the prompt goes to /chat/completions as a user message
    response = await client.text_completion(["first", "second"], "openai/gpt-4o", **up)
    assert [c.text for c in response.choices] == ["Echo: first", "Echo: second"]
    assert response.object == "text_completion"
    assert response.usage is not None and response.usage.completion_tokens == 4
    assert (await emulator.astats())["received"] == 2


async def test_through_chat_for_other_providers(client: AsyncClient, emulator: Any) -> None:
    response = await client.text_completion("hi", "anthropic/claude-test", api_base=emulator.url, api_key="k")
    assert response.choices[0].text == "Echo: hi"
    stream = await client.text_completion(
        "hi you", "anthropic/claude-test-chunks-2", api_base=emulator.url, api_key="k", stream=True
    )
    async with stream:
        chunks = [c async for c in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Echo: hi you"


async def test_bad_input(client: AsyncClient, up: dict[str, Any], emulator: Any) -> None:
    with pytest.raises(BadRequestError):
        await client.text_completion([], "openai/m", **up)
    with pytest.raises(BadRequestError):
        await client.text_completion([1, "a"], "openai/m", **up)
    with pytest.raises(BadRequestError, match="model"):
        await client.text_completion("x")
    with pytest.raises(UnsupportedParamsError):
        await client.text_completion([[1, 2]], "openai/gpt-4o", **up)
    with pytest.raises(UnsupportedParamsError, match="echo"):
        await client.text_completion("x", "openai/gpt-4o", echo=True, **up)
    assert (await emulator.astats())["received"] == 0


def test_sync_and_module(emulator: Any) -> None:
    up = {"api_base": emulator.openai_base, "api_key": "k"}
    with Client(num_retries=0) as c:
        assert c.text_completion("s", "openai/m", **up).choices[0].text == "Echo: s"
        chunks = list(c.text_completion("s t", "openai/m", stream=True, **up))
        assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == "Echo: s t"
    assert llmplex.text_completion(prompt="u", model="openai/m", **up).choices[0].text == "Echo: u"


async def test_module_async(emulator: Any) -> None:
    response = await llmplex.atext_completion("v", model="openai/m", api_base=emulator.openai_base, api_key="k")
    assert response.choices[0].text == "Echo: v"
