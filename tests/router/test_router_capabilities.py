"""``Router.aembedding`` / ``atext_completion`` (LiteLLM's names) against the emulator: routed in the group,
retried on another deployment, falling back to another group; the blocking twins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmplex import EmbeddingResponse, Router, TextCompletionResponse, TextCompletionStream
from llmplex.exceptions import BadRequestError
from tests.fixtures_emulator import EmulatorServer


def entry(name: str, model: str, base: str) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": f"openai/{model}", "api_base": base, "api_key": "k"}}


@pytest.fixture
async def router(emulator: EmulatorServer) -> AsyncIterator[Router]:
    base = emulator.openai_base
    router = Router(
        model_list=[
            entry("emb", "emb-a", base),
            entry("emb", "emb-b-status-503", base),
            entry("broken", "broken-status-500", base),
            entry("text", "text-a", base),
        ],
        fallbacks=[{"broken": ["emb"]}],
        num_retries=2,
    )
    async with router:
        yield router


async def test_aembedding_retries_and_falls_back(router: Router) -> None:
    for _ in range(4):  # the 503 deployment is retried away from
        response = await router.aembedding(model="emb", input=["a", "b"])
        assert isinstance(response, EmbeddingResponse) and len(response.data) == 2
        assert response.model == "emb-a"
    fallback = await router.aembedding(model="broken", input="x")
    assert fallback.model == "emb-a"
    with pytest.raises(BadRequestError):
        await router.aembedding(model="nope", input="x")


async def test_atext_completion(router: Router) -> None:
    response = await router.atext_completion(model="text", prompt="hi")
    assert isinstance(response, TextCompletionResponse) and response.choices[0].text == "Echo: hi"
    stream = await router.atext_completion(model="text", prompt="hi you", stream=True)
    assert isinstance(stream, TextCompletionStream)
    async with stream:
        assert "".join([c.choices[0].text async for c in stream if c.choices]) == "Echo: hi you"


def test_blocking_twins(emulator: EmulatorServer) -> None:
    router = Router(model_list=[entry("emb", "emb-a", emulator.openai_base)])
    try:
        assert len(router.embedding(model="emb", input=["x"]).data) == 1
        assert router.text_completion(model="emb", prompt="y").choices[0].text == "Echo: y"  # type: ignore[union-attr]
    finally:
        router.close()
