"""Failover before a stream's first content token, and context-window / content-policy fallbacks, through
``llmplex.Router`` against the emulator (``fault-roleend``, ``ttft-<ms>``, ``fault-contextwindow``, ...)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import aiohttp
import pytest

from llmplex import CompletionStream, ModelResponse, Router
from llmplex.exceptions import APIError, ContentPolicyViolationError, ContextWindowExceededError
from tests.fixtures_emulator import EmulatorServer

MESSAGES = [{"role": "user", "content": "hello failover"}]


def entry(name: str, model: str, base: str, **params: Any) -> dict[str, Any]:
    params = {"model": f"openai/{model}", "api_base": base, "api_key": "k", **params}
    return {"model_name": name, "litellm_params": params}


def unique(stem: str) -> str:
    return f"{stem}{uuid.uuid4().hex[:6]}"


async def calls_to(emulator: EmulatorServer, model: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(emulator.url + "/_emulator/arrivals") as response:
        body = await response.json()
    return sum(1 for _, _, name in body["arrivals"] if name == model)


async def read_all(stream: CompletionStream) -> tuple[str, list[str]]:
    """The text and the models named by the chunks (one clean stream names one model)."""
    text, models = [], set()
    async with stream:
        async for chunk in stream:
            models.add(chunk.model)
            if chunk.choices:
                text.append(chunk.choices[0].delta.content or "")
    return "".join(text), sorted(models)


async def test_a_stream_that_ends_before_content_falls_back(emulator: EmulatorServer) -> None:
    broken, good = unique("a") + "-fault-roleend", unique("b")
    async with Router(
        model_list=[entry("a", broken, emulator.openai_base), entry("b", good, emulator.openai_base)],
        fallbacks=[{"a": ["b"]}],
        num_retries=0,
    ) as router:
        stream = await router.acompletion("a", MESSAGES, stream=True)
        assert isinstance(stream, CompletionStream)
        text, models = await read_all(stream)
    assert text == "Echo: hello failover" and models == [good]
    assert await calls_to(emulator, broken) == 1 and await calls_to(emulator, good) == 1


async def test_a_stream_that_ends_before_content_is_retried_in_its_group(emulator: EmulatorServer) -> None:
    model = unique("r") + "-fault-roleend-times-1"  # the first call ends early, the next one is fine
    async with Router(model_list=[entry("g", model, emulator.openai_base)], num_retries=1) as router:
        stream = await router.acompletion("g", MESSAGES, stream=True)
        assert isinstance(stream, CompletionStream)
        text, models = await read_all(stream)
    assert text == "Echo: hello failover" and models == [model]
    assert await calls_to(emulator, model) == 2


async def test_no_first_token_within_stream_timeout_fails_over(emulator: EmulatorServer) -> None:
    slow, fast = unique("s") + "-ttft-3000", unique("f")
    async with Router(
        model_list=[entry("a", slow, emulator.openai_base), entry("b", fast, emulator.openai_base)],
        fallbacks=[{"a": ["b"]}],
        num_retries=0,
        stream_timeout=0.3,
    ) as router:
        started = time.monotonic()
        stream = await router.acompletion("a", MESSAGES, stream=True)
        assert isinstance(stream, CompletionStream)
        text, models = await read_all(stream)
        elapsed = time.monotonic() - started
    assert models == [fast] and text == "Echo: hello failover"
    assert 0.28 <= elapsed < 2.0


async def test_a_deployment_stream_timeout_applies_to_it(emulator: EmulatorServer) -> None:
    slow, fast = unique("s") + "-ttft-3000", unique("f")
    async with Router(
        model_list=[entry("a", slow, emulator.openai_base, stream_timeout=0.3), entry("b", fast, emulator.openai_base)],
        fallbacks=[{"a": ["b"]}],
        num_retries=0,
    ) as router:
        stream = await router.acompletion("a", MESSAGES, stream=True)
        assert isinstance(stream, CompletionStream)
        _, models = await read_all(stream)
    assert models == [fast]


async def test_after_content_a_failure_reaches_the_caller(emulator: EmulatorServer) -> None:
    broken, good = unique("m") + "-fault-midstream", unique("b")
    async with Router(
        model_list=[entry("a", broken, emulator.openai_base), entry("b", good, emulator.openai_base)],
        fallbacks=[{"a": ["b"]}],
        num_retries=2,
    ) as router:
        stream = await router.acompletion("a", MESSAGES, stream=True)
        assert isinstance(stream, CompletionStream)
        received = []
        with pytest.raises(APIError):
            async with stream:
                async for chunk in stream:
                    received.append(chunk)
    assert any(c.choices and c.choices[0].delta.content for c in received)  # content arrived, then the error
    assert await calls_to(emulator, broken) == 1 and await calls_to(emulator, good) == 0


async def test_context_window_errors_go_to_context_window_fallbacks(emulator: EmulatorServer) -> None:
    small, big, other = unique("s") + "-fault-contextwindow", unique("big"), unique("o")
    model_list = [
        entry("small", small, emulator.openai_base),
        entry("big", big, emulator.openai_base),
        entry("other", other, emulator.openai_base),
    ]
    async with Router(
        model_list=model_list,
        fallbacks=[{"small": ["other"]}],
        context_window_fallbacks=[{"small": ["big"]}],
        num_retries=0,
    ) as router:
        response = await router.acompletion("small", MESSAGES)
        assert isinstance(response, ModelResponse) and response.model == big
    # without context_window_fallbacks the generic fallbacks take it (LiteLLM's rule), though it is a 400
    async with Router(model_list=model_list, fallbacks=[{"small": ["other"]}], num_retries=0) as router:
        response = await router.acompletion("small", MESSAGES)
        assert isinstance(response, ModelResponse) and response.model == other
    # context_window_fallbacks set, but none for this group: no fallback at all
    async with Router(
        model_list=model_list,
        fallbacks=[{"small": ["other"]}],
        context_window_fallbacks=[{"other": ["big"]}],
        num_retries=0,
    ) as router:
        with pytest.raises(ContextWindowExceededError):
            await router.acompletion("small", MESSAGES)


async def test_content_policy_errors_go_to_content_policy_fallbacks(emulator: EmulatorServer) -> None:
    strict, lenient, other = unique("p") + "-fault-contentpolicy", unique("l"), unique("o")
    model_list = [
        entry("strict", strict, emulator.openai_base),
        entry("lenient", lenient, emulator.openai_base),
        entry("other", other, emulator.openai_base),
    ]
    async with Router(
        model_list=model_list,
        fallbacks=[{"strict": ["other"]}],
        content_policy_fallbacks=[{"strict": ["lenient"]}],
        num_retries=0,
    ) as router:
        response = await router.acompletion("strict", MESSAGES)
        assert isinstance(response, ModelResponse) and response.model == lenient
    async with Router(model_list=model_list[:1], num_retries=0) as router:
        with pytest.raises(ContentPolicyViolationError):
            await router.acompletion("strict", MESSAGES)


async def test_a_plain_bad_request_never_falls_back(emulator: EmulatorServer) -> None:
    bad, other = unique("x") + "-status-400", unique("o")
    async with Router(
        model_list=[entry("bad", bad, emulator.openai_base), entry("other", other, emulator.openai_base)],
        fallbacks=[{"bad": ["other"]}],
        context_window_fallbacks=[{"bad": ["other"]}],
        num_retries=0,
    ) as router:
        with pytest.raises(APIError) as info:
            await router.acompletion("bad", MESSAGES)
        assert info.value.status_code == 400
    assert await calls_to(emulator, other) == 0
