"""The emulator's embeddings and legacy completions: the openai SDK accepts them, and the real per-request limits
and required fields are enforced in each provider's native error shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from tests.fixtures_emulator import EmulatorServer


@pytest.fixture
async def oai(emulator: EmulatorServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=emulator.openai_base, api_key="k", max_retries=0, timeout=10) as client:
        yield client


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def test_openai_sdk_embeddings_float_and_base64(oai: openai.AsyncOpenAI) -> None:
    floats = await oai.embeddings.create(model="m", input=["a", "b"], encoding_format="float", dimensions=5)
    assert [len(d.embedding) for d in floats.data] == [5, 5]
    # the SDK decodes base64 itself when it asked for it: the values must equal the float answer
    decoded = await oai.embeddings.create(model="m", input=["a", "b"], dimensions=5)
    assert [d.embedding for d in decoded.data] == [d.embedding for d in floats.data]
    assert floats.usage.prompt_tokens == 2


async def test_openai_sdk_completions_and_stream(oai: openai.AsyncOpenAI) -> None:
    answer = await oai.completions.create(model="m", prompt="hi there")
    assert answer.choices[0].text == "Echo: hi there"
    stream = await oai.completions.create(model="m", prompt="hi there", stream=True)
    texts = [chunk.choices[0].text async for chunk in stream if chunk.choices]
    assert "".join(texts) == "Echo: hi there"


async def post(http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    async with http.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_limits_and_required_fields(emulator: EmulatorServer, http: aiohttp.ClientSession) -> None:
    bearer = {"Authorization": "Bearer k"}
    status, body = await post(
        http, emulator.url + "/v2/embed", {"model": "e", "texts": ["x"] * 97, "input_type": "search_query"}, bearer
    )
    assert status == 400 and "at most 96" in body["message"]
    status, body = await post(http, emulator.url + "/v2/embed", {"model": "e", "texts": ["x"]}, bearer)
    assert status == 400 and "input_type" in body["message"]
    requests = [{"model": "models/g", "content": {"parts": [{"text": "x"}]}}] * 101
    status, body = await post(
        http, emulator.url + "/v1beta/models/g:batchEmbedContents", {"requests": requests}, {"x-goog-api-key": "k"}
    )
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    status, body = await post(
        http, emulator.url + "/v1beta/models/g:batchEmbedContents", {"requests": requests[:1]}, {}
    )
    assert status == 400 and "API key not valid" in body["error"]["message"]
    status, body = await post(http, emulator.openai_base + "/embeddings", {"model": "m", "input": [1.5]}, bearer)
    assert status == 400 and body["error"]["param"] == "input"
    status, body = await post(
        http, emulator.openai_base + "/embeddings", {"model": "m-status-503", "input": "x"}, bearer
    )
    assert status == 503
    status, body = await post(http, emulator.url + "/openai/deployments/d/embeddings", {"input": "x"}, {"api-key": "k"})
    assert status == 404  # no api-version: Azure's "Resource not found"
