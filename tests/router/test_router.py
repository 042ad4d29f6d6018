"""``llmplex.Router`` (LiteLLM's API) against the emulator: construction, calls, streams, fallbacks, bad input."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import llmplex
from llmplex import BadRequestError, CompletionStream, ConfigError, ModelResponse, Router, SyncStream
from llmplex.exceptions import InternalServerError, RateLimitError
from llmplex.router.state.shared import RedisState
from tests.fixtures_emulator import EmulatorServer
from tests.router.test_redis_state import REDIS_URL, delete_prefix, require_redis

MESSAGES = [{"role": "user", "content": "hello router"}]


def entry(name: str, model: str, base: str, **params: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": f"openai/{model}", "api_base": base, **params}}


@pytest.fixture
async def router(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Router]:
    monkeypatch.setenv("ROUTER_TEST_KEY", "k-from-env")
    router = Router(
        model_list=[
            entry("fast", "fast-a", emulator.openai_base, api_key="os.environ/ROUTER_TEST_KEY"),
            entry("fast", "fast-b", emulator.openai_base, api_key="os.environ/ROUTER_TEST_KEY"),
            entry("broken", "broken-status-500", emulator.openai_base, api_key="k"),
        ],
        fallbacks=[{"broken": ["fast"]}],
        num_retries=1,
    )
    async with router:
        yield router


def test_router_is_public() -> None:
    assert llmplex.Router is Router and "Router" in llmplex.__all__


async def test_acompletion_routes_within_the_group(router: Router, emulator: EmulatorServer) -> None:
    await emulator.areset()
    models = set()
    for _ in range(12):
        response = await router.acompletion(model="fast", messages=MESSAGES)
        assert isinstance(response, ModelResponse)
        assert response.choices[0].message.content == "Echo: hello router"
        models.add(response.model)
    assert models == {"fast-a", "fast-b"}  # both deployments served (shuffle over 12 calls)
    assert (await emulator.astats())["completed"] == 12


async def test_env_references_are_resolved(router: Router) -> None:
    keys = {d["litellm_params"]["api_key"] for d in router.get_model_list() if d["model_name"] == "fast"}
    assert keys == {"k-from-env"}
    assert router.get_model_names() == ["fast", "broken"]


async def test_streaming(router: Router) -> None:
    stream = await router.acompletion(model="fast", messages=MESSAGES, stream=True)
    assert isinstance(stream, CompletionStream)
    async with stream:
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert text == "Echo: hello router"


async def test_fallback_to_another_group(router: Router, emulator: EmulatorServer) -> None:
    await emulator.areset()
    response = await router.acompletion(model="broken", messages=MESSAGES)
    assert isinstance(response, ModelResponse) and response.model in {"fast-a", "fast-b"}
    stats = await emulator.astats()
    assert stats["received"] == 3  # broken twice (num_retries=1), then one fallback call


async def test_without_fallback_the_error_is_typed(emulator: EmulatorServer) -> None:
    async with Router(model_list=[entry("broken", "broken-status-500", emulator.openai_base, api_key="k")]) as r:
        with pytest.raises(InternalServerError):
            await r.acompletion(
                model="broken",
                messages=MESSAGES,
            )


async def test_unknown_group_is_a_bad_request_naming_the_groups(router: Router) -> None:
    with pytest.raises(BadRequestError) as info:
        await router.acompletion(model="nope", messages=MESSAGES)
    assert info.value.status_code == 400
    assert "fast" in info.value.message and "broken" in info.value.message


async def test_alias_and_default_params(emulator: EmulatorServer) -> None:
    async with Router(
        model_list=[entry("fast", "fast-a", emulator.openai_base, api_key="k")],
        model_group_alias={"quick": "fast"},
        default_litellm_params={"max_tokens": 5},
    ) as r:
        response = await r.acompletion(model="quick", messages=MESSAGES)
        assert isinstance(response, ModelResponse) and response.model == "fast-a"


def test_sync_completion_and_stream(emulator: EmulatorServer) -> None:
    r = Router(model_list=[entry("fast", "fast-a", emulator.openai_base, api_key="k")])
    try:
        response = r.completion(model="fast", messages=MESSAGES)
        assert isinstance(response, ModelResponse)
        assert response.choices[0].message.content == "Echo: hello router"
        stream = r.completion(model="fast", messages=MESSAGES, stream=True)
        assert isinstance(stream, SyncStream)
        with stream:
            text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text == "Echo: hello router"
    finally:
        r.close()


def test_unknown_litellm_arguments_warn_once(emulator: EmulatorServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="llmplex.router"):
        Router(
            model_list=[entry("fast", "fast-a", emulator.openai_base, api_key="k")],
            cache_responses=True,
            enable_pre_call_checks=True,
        )
    warnings = [r.getMessage() for r in caplog.records if r.name == "llmplex.router"]
    assert len(warnings) == 1
    assert "cache_responses" in warnings[0] and "enable_pre_call_checks" in warnings[0]


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"model_list": [{"model_name": "a"}]}, "model_list[0].litellm_params"),
        ({"model_list": [{"model_name": "a", "litellm_params": {"model": 3}}]}, "model_list[0].litellm_params.model"),
        ({"model_list": {"a": "b"}}, "model_list"),
        ({"fallbacks": [{"a": ["missing"]}]}, "fallbacks[0].a"),
        ({"fallbacks": [{"a": 5}]}, "fallbacks[0].a"),
        ({"fallbacks": "a"}, "fallbacks"),
        ({"context_window_fallbacks": [{"a": ["zzz"]}]}, "context_window_fallbacks[0].a"),
        ({"routing_strategy": "fastest"}, "routing_strategy"),
        ({"num_retries": "two"}, "num_retries"),
        ({"model_group_alias": {"x": "nope"}}, "model_group_alias.x"),
    ],
)
def test_malformed_input_is_a_config_error_naming_the_key(kwargs: dict[str, Any], named: str) -> None:
    args: dict[str, Any] = {"model_list": [entry("a", "m", "http://127.0.0.1:9/v1", api_key="k")], **kwargs}
    with pytest.raises(ConfigError) as info:
        Router(**args)
    assert named in str(info.value)


@pytest.fixture
def prefix() -> Iterator[str]:
    require_redis()
    prefix = f"llmplex-test-router-{uuid.uuid4().hex[:12]}"
    yield prefix
    delete_prefix(REDIS_URL, prefix)


async def test_redis_shares_rpm_limits_between_routers(emulator: EmulatorServer, prefix: str) -> None:
    def make() -> Router:
        model_list = [entry("fast", "fast-a", emulator.openai_base, api_key="k", rpm=2)]
        # queue_timeout=0: refuse at once instead of waiting for the next window (tests/router/test_admission.py)
        return Router(
            model_list=model_list, redis_url=REDIS_URL, redis_key_prefix=prefix, num_retries=0, queue_timeout=0
        )

    async with make() as a, make() as b:
        assert isinstance(a.state, RedisState)
        assert isinstance(await a.acompletion(model="fast", messages=MESSAGES), ModelResponse)
        assert isinstance(await b.acompletion(model="fast", messages=MESSAGES), ModelResponse)
        with pytest.raises(RateLimitError) as info:  # the window is full for both routers together
            await b.acompletion(model="fast", messages=MESSAGES)
        assert info.value.retry_after is not None and info.value.retry_after >= 1


async def test_wildcards_unset_variables_and_disabled_deployments(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LiteLLM's model_list semantics: a wildcard fills the model, an unset os.environ/ key is absent,
    a deployment llmplex cannot serve is disabled (a 400 naming it), an exact name wins over a pattern."""
    monkeypatch.delenv("ROUTER_UNSET_VAR", raising=False)
    async with Router(
        model_list=[
            {
                "model_name": "*",
                "litellm_params": {"model": "openai/*", "api_base": emulator.openai_base, "api_key": "k"},
            },
            entry("exact", "exact-target", emulator.openai_base, api_key="k"),
            entry("keyless", "m", emulator.openai_base, api_key="os.environ/ROUTER_UNSET_VAR"),
            {"model_name": "sm", "litellm_params": {"model": "sagemaker/some-endpoint"}},
        ]
    ) as r:
        response = await r.acompletion(model="anything-v1", messages=MESSAGES)
        assert isinstance(response, ModelResponse) and response.model == "anything-v1"
        response = await r.acompletion(model="exact", messages=MESSAGES)
        assert isinstance(response, ModelResponse) and response.model == "exact-target"
        assert "api_key" not in r.get_model_list()[2]["litellm_params"]
        with pytest.raises(BadRequestError) as info:
            await r.acompletion(model="sm", messages=MESSAGES)
        assert info.value.message == "llmplex does not support provider 'sagemaker' (deployment sm)"
