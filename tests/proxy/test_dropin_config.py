"""A LiteLLM config starts unchanged: LiteLLM's own proxy_server_config.yaml, wildcards, unset variables,
deployments llmplex cannot serve. Real proxy on 127.0.0.1, the openai SDK and aiohttp as clients."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from llmplex.exceptions import ConfigError
from llmplex.proxy import ProxyConfig, load_config
from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model

LITELLM_EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "proxy_server_config.yaml"
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def test_litellm_example_config_loads_unchanged_with_no_variables_set() -> None:
    started = time.perf_counter()
    config = load_config(LITELLM_EXAMPLE, environ={})
    assert time.perf_counter() - started < 1.0
    assert len(config.deployments) == 19
    disabled = {d.model_name: d.problem for d in config.deployments if d.problem}
    assert set(disabled) == {"sagemaker-completion-model", "dall-e-2", "openai-dall-e-3"}
    modes = {d.model_name: d.mode for d in config.deployments}
    assert (modes["text-embedding-ada-002"], modes["mistral-embed"], modes["gpt-instruct"]) == (
        "embedding",
        "embedding",
        "completion",
    )
    assert config.redis is None and config.master_key == "sk-1234"
    warnings = "\n".join(config.warnings)
    assert "REDIS_HOST - Redis is not configured" in warnings
    assert "model_list[1].litellm_params.api_key (line 13): AZURE_API_KEY" in warnings
    assert "LANGFUSE" not in warnings  # variables under keys llmplex ignores are not worth a line
    assert "disabled: llmplex does not support provider 'sagemaker' (deployment sagemaker-completion-model)" in warnings
    assert "anthropic/* (anthropic/*): set ANTHROPIC_API_KEY" in warnings


@pytest.fixture(scope="module")
def example(proxy_factory: Any) -> ProxyServer:
    # every upstream of this config is on the internet: the tests below only send requests that are
    # answered before any upstream call (disabled deployments, missing keys)
    server: ProxyServer = proxy_factory(load_config(LITELLM_EXAMPLE, environ={}))
    return server


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            "sagemaker-completion-model",
            "llmplex does not support provider 'sagemaker' (deployment sagemaker-completion-model)",
        ),
        (
            "openai-dall-e-3",
            "llmplex does not support image generation (mode 'image_generation') (deployment openai-dall-e-3)",
        ),
        ("gpt-instruct", "model 'gpt-instruct' is for text completions (mode 'completion'): call /v1/completions"),
        ("text-embedding-ada-002", "is for embeddings (mode 'embedding'): call /v1/embeddings"),
    ],
)
def test_disabled_or_wrong_endpoint_deployments_answer_400_naming_why(example: ProxyServer, model: str, message: str):
    client = openai.OpenAI(base_url=example.base, api_key="sk-1234", max_retries=0)
    with client, pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_unset_key_and_wildcard_give_a_clear_auth_error(example: ProxyServer) -> None:
    with openai.OpenAI(base_url=example.base, api_key="sk-1234", max_retries=0) as client:
        for model, provider in [("gpt-4", "azure"), ("anthropic/claude-sonnet-4-5-20250929", "anthropic")]:
            with pytest.raises(openai.AuthenticationError) as caught:
                client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
            assert f"Missing API key for {provider}" in str(caught.value)


async def test_models_lists_wildcards_as_known_models(http: aiohttp.ClientSession, example: ProxyServer) -> None:
    async with http.get(example.base + "/models", headers={"Authorization": "Bearer sk-1234"}) as resp:
        names = [m["id"] for m in (await resp.json())["data"]]
    assert "*" not in names and "anthropic/*" not in names
    assert "gpt-4" in names and "sagemaker-completion-model" in names  # LiteLLM lists every model_name
    assert any(n.startswith("anthropic/claude-") for n in names)
    assert any(n.startswith("openai/gpt-") for n in names) and any(n.startswith("groq/") for n in names)


@pytest.fixture(scope="module")
def wild(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    base = emulator.openai_base
    server: ProxyServer = proxy_factory(
        {
            "model_list": [
                openai_model("gpt-exact", "exact-target", base),
                {"model_name": "*", "litellm_params": {"model": "openai/*", "api_base": base, "api_key": "k"}},
                {
                    "model_name": "anthropic/*",
                    "litellm_params": {"model": "anthropic/*", "api_base": emulator.url, "api_key": "k"},
                },
                {
                    "model_name": "team-*",
                    "litellm_params": {"model": "openai/team-*-v2", "api_base": base, "api_key": "k"},
                },
                openai_model("instruct", "x", base, model_info={"mode": "completion"}),
                {
                    "model_name": "old-instruct",
                    "litellm_params": {"model": "text-completion-openai/gpt-3.5-turbo-instruct", "api_base": base},
                },
                openai_model("vectors", "embedder", base, model_info={"mode": "embedding"}),
            ]
        }
    )
    return server


def test_wildcards_fill_the_model_and_an_exact_name_wins(wild: ProxyServer) -> None:
    with openai.OpenAI(base_url=wild.base, api_key="unused", max_retries=0) as client:
        cases = [
            ("gpt-exact", "exact-target"),
            ("gpt-anything", "gpt-anything"),
            ("anthropic/claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"),
            ("team-blue", "team-blue-v2"),
            ("openai/gpt-4o", "gpt-4o"),
        ]
        for requested, upstream in cases:
            raw = client.chat.completions.with_raw_response.create(model=requested, messages=MESSAGES)  # type: ignore[arg-type]
            assert raw.parse().model == upstream, requested
            assert raw.headers["x-llmplex-model"] == requested


async def test_completion_and_embedding_modes_never_reach_the_chat_upstream(
    wild: ProxyServer, emulator: EmulatorServer
) -> None:
    before = (await emulator.astats())["received"]
    with openai.OpenAI(base_url=wild.base, api_key="unused", max_retries=0) as client:
        for model, what in [
            ("instruct", "text completions"),
            ("old-instruct", "text completions"),
            ("vectors", "embeddings"),
        ]:
            with pytest.raises(openai.BadRequestError) as caught:
                client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
            assert f"model {model!r} is for {what}" in str(caught.value)
    assert (await emulator.astats())["received"] == before


def test_wrong_wildcard_pattern_stops_startup_with_its_place() -> None:
    text = "model_list:\n  - model_name: plain\n    litellm_params:\n      model: openai/*\n"
    with pytest.raises(ConfigError) as caught:
        ProxyConfig.from_yaml(text, environ={})
    assert "model_list[0].litellm_params.model (line 4): wrong wildcard pattern" in str(caught.value)


def test_unset_variables_are_absent_set_and_wrong_ones_still_stop_startup(emulator: EmulatorServer) -> None:
    text = (
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n"
        f"      api_base: {emulator.openai_base}\n      api_key: os.environ/DROPIN_UNSET_KEY\n"
        "      rpm: os.environ/DROPIN_RPM\n"
        "router_settings:\n  redis_host: os.environ/DROPIN_REDIS_HOST\n"
    )
    config = ProxyConfig.from_yaml(text, environ={})
    assert config.redis is None and "api_key" not in config.deployments[0].params
    assert config.deployments[0].rpm is None
    assert "DROPIN_UNSET_KEY" in "\n".join(config.warnings)
    with pytest.raises(ConfigError) as caught:
        ProxyConfig.from_yaml(text, environ={"DROPIN_RPM": "six"})
    assert "model_list[0].litellm_params.rpm (line 7): must be an integer" in str(caught.value)
