"""The real local model (SmolLM2 on xllamacpp, which serves the OpenAI and the Anthropic formats) behind both
directions of the translation: Anthropic in -> OpenAI-format upstream (the proxy's /v1/messages), and OpenAI in ->
Anthropic-format upstream (the SDK's anthropic/ adapter, and the proxy relaying /v1/messages as is)."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from llmplex import AsyncClient, ModelResponse
from tests.fixtures_proxy import ProxyServer
from tests.fixtures_real_llm import RealLLM

pytestmark = pytest.mark.real_llm

USER: Any = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, real_llm: RealLLM) -> ProxyServer:
    openai_params = {"model": f"openai/{real_llm.model}", "api_base": real_llm.openai_base, "api_key": "unused"}
    anthropic_params = {"model": f"anthropic/{real_llm.model}", "api_base": real_llm.url, "api_key": "unused"}
    return proxy_factory(
        {
            "model_list": [
                {"model_name": "smol-openai", "litellm_params": openai_params},
                {"model_name": "smol-anthropic", "litellm_params": anthropic_params},
            ]
        }
    )


@pytest.mark.parametrize("model", ["smol-openai", "smol-anthropic"])
async def test_anthropic_sdk_through_the_proxy(proxy: ProxyServer, model: str) -> None:
    async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key="unused", max_retries=0, timeout=60) as client:
        message = await client.messages.create(model=model, max_tokens=8, messages=USER)
        assert message.type == "message" and message.content and message.content[0].type == "text"
        assert 0 < message.usage.output_tokens <= 8
        async with client.messages.stream(model=model, max_tokens=8, messages=USER) as stream:
            names = [event.type async for event in stream]
            final = await stream.get_final_message()
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert final.content and final.content[0].type == "text" and final.content[0].text


async def test_openai_in_anthropic_upstream(real_llm: RealLLM) -> None:
    async with AsyncClient(num_retries=0) as client:
        response = await client.completion(
            f"anthropic/{real_llm.model}", USER, api_base=real_llm.url, api_key="unused", max_tokens=8
        )
        assert isinstance(response, ModelResponse) and response.choices[0].message.content


async def test_openai_sdk_completions_on_the_real_model(proxy: ProxyServer) -> None:
    async with openai.AsyncOpenAI(base_url=proxy.base, api_key="unused", max_retries=0, timeout=60) as client:
        text = await client.completions.create(model="smol-openai", prompt="Once upon a time", max_tokens=8)
        assert text.choices[0].text
