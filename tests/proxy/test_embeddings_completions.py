"""/v1/embeddings and /v1/completions through the proxy (real uvicorn), with the openai SDK and raw HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model

KEY = "sk-proxy-test"


def expected_vector(text: str, dimensions: int = 8) -> list[float]:
    digest = hashlib.blake2b(text.encode(), digest_size=64).digest()
    return [(b - 128) / 128 for b in digest[:dimensions]]


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    base = emulator.openai_base
    config = {
        "model_list": [
            openai_model("embedder", "emb", base),
            {
                "model_name": "cohere-embedder",
                "litellm_params": {"model": "cohere/embed-v4.0", "api_base": emulator.url, "api_key": "k"},
            },
            {
                "model_name": "azure-embedder",
                "litellm_params": {
                    "model": "azure/my-dep",
                    "api_base": emulator.url,
                    "api_key": "k",
                    "api_version": "2024-10-21",
                },
            },
            openai_model("broken", "b-status-500", base),
            openai_model("instruct", "inst", base),
            {
                "model_name": "chatty",
                "litellm_params": {"model": "anthropic/claude-x", "api_base": emulator.url, "api_key": "k"},
            },
            openai_model("flaky", "flaky-status-503-times-1", base),
            openai_model("flaky", "flaky-ok", base),
        ],
        "router_settings": {"num_retries": 2},
        "general_settings": {"master_key": KEY},
    }
    return proxy_factory(config)


@pytest.fixture
async def oai(proxy: ProxyServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=proxy.base, api_key=KEY, max_retries=0, timeout=30) as client:
        yield client


async def test_embeddings_float_and_base64(oai: openai.AsyncOpenAI) -> None:
    texts = ["alpha", "beta", "gamma"]
    floats = await oai.embeddings.create(model="embedder", input=texts, encoding_format="float")
    assert [d.embedding for d in floats.data] == [expected_vector(t) for t in texts]
    assert floats.usage.prompt_tokens == 5  # ceil(len / 4) each
    # the SDK asks for base64 by default and decodes it: the same values
    decoded = await oai.embeddings.create(model="embedder", input=texts)
    assert [d.embedding for d in decoded.data] == [expected_vector(t) for t in texts]


async def test_embeddings_split_and_other_providers(oai: openai.AsyncOpenAI, emulator: EmulatorServer) -> None:
    texts = [f"t{i}" for i in range(300)]  # over Cohere's 96 per request
    await emulator.areset()
    response = await oai.embeddings.create(model="cohere-embedder", input=texts, encoding_format="float")
    assert [d.embedding for d in response.data] == [expected_vector(t) for t in texts]
    assert (await emulator.astats())["received"] == 4
    azure = await oai.embeddings.create(model="azure-embedder", input="x", encoding_format="float")
    assert azure.data[0].embedding == expected_vector("x")


async def test_azure_path(proxy: ProxyServer) -> None:
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=proxy.url, api_key=KEY, api_version="2024-10-21", max_retries=0
    ) as client:
        response = await client.embeddings.create(model="embedder", input=["q"], encoding_format="float")
        assert response.data[0].embedding == expected_vector("q")
        text = await client.completions.create(model="instruct", prompt="hi")
        assert text.choices[0].text == "Echo: hi"


async def test_retry_on_another_deployment(oai: openai.AsyncOpenAI) -> None:
    for _ in range(3):
        response = await oai.embeddings.create(model="flaky", input="x", encoding_format="float")
        assert response.data[0].embedding == expected_vector("x")


async def test_fan_out_array(proxy: ProxyServer) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            proxy.base + "/embeddings",
            json={"model": "embedder, broken", "input": "x"},
            headers={"Authorization": f"Bearer {KEY}"},
        ) as resp,
    ):
        assert resp.status == 200
        body = await resp.json()
    assert body[0]["data"][0]["embedding"] == expected_vector("x")
    assert "error" in body[1]


@pytest.mark.parametrize(
    "body",
    [
        {"model": "embedder", "input": []},
        {"model": "embedder", "input": ""},
        {"model": "embedder", "input": ["a", 3]},
        {"model": "embedder"},
        {"model": "embedder", "input": "a", "encoding_format": "int8"},
        {"model": "embedder", "input": "a", "dimensions": 0},
        {"model": "embedder", "input": "a", "checkpoint": "/tmp/x"},
        {"model": "embedder", "input": "a", "api_base": "http://elsewhere"},
        {"model": "nope", "input": "a"},
    ],
)
async def test_bad_embedding_input_is_a_400_before_any_upstream_call(
    proxy: ProxyServer, emulator: EmulatorServer, body: dict[str, Any]
) -> None:
    await emulator.areset()
    async with (
        aiohttp.ClientSession() as http,
        http.post(proxy.base + "/embeddings", json=body, headers={"Authorization": f"Bearer {KEY}"}) as resp,
    ):
        assert resp.status == 400
        error = (await resp.json())["error"]
        assert error["type"] == "invalid_request_error" and error["message"]
    assert (await emulator.astats())["received"] == 0


async def test_auth_and_request_id(proxy: ProxyServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(proxy.base + "/embeddings", json={"model": "embedder", "input": "a"}) as resp:
            assert resp.status == 401
        async with http.post(
            proxy.base + "/embeddings",
            json={"model": "embedder", "input": "a"},
            headers={"Authorization": f"Bearer {KEY}", "x-request-id": "req-embed-1"},
        ) as resp:
            assert resp.status == 200
            assert resp.headers["x-request-id"] == "req-embed-1"
            assert resp.headers["x-llmplex-model"] == "embedder"
        async with http.get(proxy.url + "/metrics", headers={"Authorization": f"Bearer {KEY}"}) as resp:
            assert "/v1/embeddings" in await resp.text()


async def test_completions_native_and_stream(oai: openai.AsyncOpenAI) -> None:
    response = await oai.completions.create(model="instruct", prompt="hello there", max_tokens=5)
    assert response.choices[0].text == "Echo: hello there"
    assert response.object == "text_completion"
    stream = await oai.completions.create(model="instruct", prompt="one two", stream=True)
    texts = [c.choices[0].text async for c in stream if c.choices]
    assert "".join(texts) == "Echo: one two"


async def test_completions_through_chat(oai: openai.AsyncOpenAI) -> None:
    response = await oai.completions.create(model="chatty", prompt="hi")
    assert response.choices[0].text == "Echo: hi"
    stream = await oai.completions.create(model="chatty", prompt="hi there", stream=True)
    assert "".join([c.choices[0].text async for c in stream if c.choices]) == "Echo: hi there"


async def test_completions_errors(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        await oai.completions.create(model="instruct", prompt=[])  # type: ignore[arg-type]
    with pytest.raises(openai.InternalServerError):
        await oai.completions.create(model="broken", prompt="x")
