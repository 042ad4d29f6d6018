"""LiteLLM's per-request controls in the SDK (``llmplex.acompletion``) and the ``Router``, against the emulator.

None of them may reach the upstream (it would answer 400 "Unrecognized request argument"): the emulator
echoes, so a call that succeeds at an upstream is also checked to have sent a clean body.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import llmplex
from llmplex import BadRequestError, ModelResponse, Router
from llmplex.exceptions import (
    ContextWindowExceededError,
    InternalServerError,
    RateLimitError,
    Timeout,
)
from tests.fixtures_emulator import EmulatorServer
from tests.raw_upstream import Conn, Received, completion_body, serve

MESSAGES = [{"role": "user", "content": "control me"}]


def entry(name: str, model: str, base: str, **params: Any) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {"model": f"openai/{model}", "api_base": base, "api_key": "k", **params},
    }


@pytest.fixture
async def router(emulator: EmulatorServer) -> AsyncIterator[Router]:
    base = emulator.openai_base
    async with Router(
        model_list=[
            entry("primary", "primary-a", base),
            entry("backup", "backup-b", base),
            entry("other", "other-c", base),
            entry("broken", "broken-status-500", base),
            entry("flaky", "flaky-status-503-times-1", base),
            entry("long", "long-status-400", base),
        ],
        num_retries=0,
    ) as router:
        yield router


async def test_mock_testing_fallbacks_goes_to_the_request_fallbacks(router: Router, emulator: EmulatorServer) -> None:
    await emulator.areset()
    response = await router.acompletion("primary", MESSAGES, mock_testing_fallbacks=True, fallbacks=["backup"])
    assert response.model == "backup-b"
    assert (await emulator.astats())["received"] == 1  # the mocked failure made no upstream call


async def test_request_fallbacks_in_litellms_three_shapes(router: Router) -> None:
    by_list = await router.acompletion("broken", MESSAGES, fallbacks=["broken", "backup"])
    assert by_list.model == "backup-b"
    mapping = await router.acompletion("broken", MESSAGES, fallbacks=[{"broken": ["other"]}, {"other": []}])
    assert mapping.model == "other-c"
    overridden = await router.acompletion(
        "broken", MESSAGES, fallbacks=[{"model": "backup", "messages": [{"role": "user", "content": "shorter"}]}]
    )
    assert overridden.choices[0].message.content == "Echo: shorter"


async def test_request_fallbacks_replace_the_routers(emulator: EmulatorServer) -> None:
    base = emulator.openai_base
    models = [entry("broken", "broken-status-500", base), entry("a", "a-1", base), entry("b", "b-1", base)]
    async with Router(model_list=models, fallbacks=[{"broken": ["a"]}], num_retries=0) as router:
        assert (await router.acompletion("broken", MESSAGES)).model == "a-1"
        assert (await router.acompletion("broken", MESSAGES, fallbacks=["b"])).model == "b-1"
        with pytest.raises(InternalServerError):
            await router.acompletion("broken", MESSAGES, disable_fallbacks=True)


async def test_context_window_fallbacks(emulator: EmulatorServer) -> None:
    base = emulator.openai_base
    models = [entry("small", "small-1", base), entry("big", "big-1", base), entry("else", "else-1", base)]
    async with Router(
        model_list=models, context_window_fallbacks=[{"small": ["big"]}], fallbacks=[{"small": ["else"]}]
    ) as router:
        response = await router.acompletion("small", MESSAGES, mock_testing_context_fallbacks=True)
        assert response.model == "big-1"  # the router's context_window_fallbacks, not its fallbacks
        per_request = await router.acompletion(
            "small", MESSAGES, mock_testing_context_fallbacks=True, context_window_fallbacks=["else"]
        )
        assert per_request.model == "else-1"
        assert (await router.acompletion("small", MESSAGES, mock_testing_fallbacks=True)).model == "else-1"


async def test_a_bad_request_never_falls_back(router: Router) -> None:
    with pytest.raises(BadRequestError):
        await router.acompletion("long", MESSAGES, fallbacks=["backup"])


async def test_mock_testing_rate_limit_error_is_a_429(router: Router) -> None:
    with pytest.raises(RateLimitError):
        await router.acompletion("primary", MESSAGES, mock_testing_rate_limit_error=True)


async def test_per_request_num_retries(router: Router, emulator: EmulatorServer) -> None:
    await emulator.areset()
    with pytest.raises(Exception):  # noqa: B017 - the router's num_retries=0: the first 503 is final
        await router.acompletion("flaky", MESSAGES)
    await emulator.areset()
    response = await router.acompletion("flaky", MESSAGES, num_retries=1)
    assert response.model == "flaky-status-503-times-1"
    assert (await emulator.astats())["received"] == 2


async def test_mock_response_with_n_and_mock_timeout(router: Router, emulator: EmulatorServer) -> None:
    await emulator.areset()
    response = await router.acompletion("primary", MESSAGES, mock_response="mocked", n=3)
    assert [c.message.content for c in response.choices] == ["mocked"] * 3
    started = time.perf_counter()
    with pytest.raises(Timeout):
        await router.acompletion("primary", MESSAGES, mock_timeout=True, timeout=0.2)
    assert 0.19 <= time.perf_counter() - started < 2.0
    timed_out_then_backup = await router.acompletion(
        "primary", MESSAGES, mock_timeout=True, timeout=0.05, fallbacks=[{"model": "backup", "mock_timeout": False}]
    )
    assert timed_out_then_backup.model == "backup-b"
    assert (await emulator.astats())["received"] == 1


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"fallbacks": "backup"}, "fallbacks"),
        ({"fallbacks": ["nope"]}, "fallbacks"),
        ({"fallbacks": [{"broken": "nope"}]}, "fallbacks"),
        ({"fallbacks": [3]}, "fallbacks"),
        ({"context_window_fallbacks": [{"primary": [1]}]}, "context_window_fallbacks"),
        ({"priority": "high"}, "priority"),
        ({"priority": 1.5}, "priority"),
        ({"num_retries": -1}, "num_retries"),
        ({"mock_testing_fallbacks": "yes"}, "mock_testing_fallbacks"),
    ],
)
async def test_malformed_controls_are_bad_requests_naming_the_field(
    router: Router, kwargs: dict[str, Any], param: str
) -> None:
    with pytest.raises(BadRequestError) as info:
        await router.acompletion("primary", MESSAGES, **kwargs)
    assert info.value.param == param


async def test_controls_never_reach_the_upstream() -> None:
    received: list[Received] = []

    async def answer(request: Received, conn: Conn) -> None:
        received.append(request)
        await conn.respond(200, completion_body("ok"))

    async with serve(answer) as upstream:
        models = [entry("one", "one", upstream.openai_base), entry("two", "two", upstream.openai_base)]
        async with Router(model_list=models) as router:
            await router.acompletion(
                "one", MESSAGES, priority=2, metadata={"tag": "x"}, fallbacks=["two"], num_retries=1, timeout=30
            )
    body = received[0].json()
    assert set(body) <= {"model", "messages", "stream"}, body


async def test_sdk_completion_takes_fallbacks_and_mocks(emulator: EmulatorServer) -> None:
    base = emulator.openai_base
    response = await llmplex.acompletion(
        "openai/broken-status-500", MESSAGES, api_base=base, api_key="k", num_retries=0, fallbacks=["openai/ok-1"]
    )
    assert isinstance(response, ModelResponse) and response.model == "ok-1"
    mocked = await llmplex.acompletion(
        "openai/a", MESSAGES, api_base=base, api_key="k", mock_testing_fallbacks=True, fallbacks=["openai/b"]
    )
    assert mocked.model == "b"
    with pytest.raises(ContextWindowExceededError):
        await llmplex.acompletion("openai/a", MESSAGES, api_base=base, api_key="k", mock_testing_context_fallbacks=True)
    with pytest.raises(BadRequestError) as info:
        await llmplex.acompletion("openai/a", MESSAGES, api_base=base, api_key="k", fallbacks=5)
    assert info.value.param == "fallbacks"
