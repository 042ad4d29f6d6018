"""The real local model (SmolLM2 on xllamacpp) behind the proxy, through the openai SDK."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fixtures_proxy import ProxyServer
from tests.fixtures_real_llm import RealLLM

pytestmark = pytest.mark.real_llm

MESSAGES = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, real_llm: RealLLM) -> ProxyServer:
    params = {"model": f"openai/{real_llm.model}", "api_base": real_llm.openai_base, "api_key": "unused"}
    return proxy_factory({"model_list": [{"model_name": "smol", "litellm_params": params}]})


async def test_real_model_through_the_proxy(proxy: ProxyServer) -> None:
    async with openai.AsyncOpenAI(base_url=proxy.base, api_key="unused", max_retries=0) as client:
        response = await client.chat.completions.create(model="smol", messages=MESSAGES, max_tokens=8)  # type: ignore[arg-type]
        assert response.choices[0].message.content
        assert response.usage is not None and 0 < response.usage.completion_tokens <= 8
        stream = await client.chat.completions.create(
            model="smol",
            messages=MESSAGES,  # type: ignore[arg-type]
            max_tokens=8,
            stream=True,
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(pieces)
