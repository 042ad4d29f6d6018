"""embedding / aembedding against the emulator: every provider's wire format, splitting past the real per-request
limits and reassembly in input order, base64, pacing, checkpoints, fan-out, and bad input before any request."""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from pathlib import Path
from typing import Any

import pytest

import llmplex
from llmplex import AsyncClient, Client, EmbeddingResponse
from llmplex._embedding_call import split_parts
from llmplex.exceptions import (
    AllModelsFailedError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
    StreamError,
    UnsupportedParamsError,
)


def expected_vector(text: str, dimensions: int = 8) -> list[float]:
    """The emulator's vector for ``text`` (blake2b bytes scaled to [-1, 1]), computed independently here."""
    digest = hashlib.blake2b(text.encode(), digest_size=64).digest()
    return [(b - 128) / 128 for b in digest[:dimensions]]


def texts(n: int) -> list[str]:
    return [f"text number {i}" for i in range(n)]


def assert_in_order(response: EmbeddingResponse, inputs: list[str], dimensions: int = 8) -> None:
    assert response.object == "list"
    assert [d.index for d in response.data] == list(range(len(inputs)))
    for item, text in zip(response.data, inputs, strict=True):
        assert item.object == "embedding"
        assert item.embedding == expected_vector(text, dimensions), text


async def test_openai_single_string(client: AsyncClient, up: dict[str, Any], emulator: Any) -> None:
    response = await client.embedding("openai/text-embedding-3-small", "hello", **up)
    assert isinstance(response, EmbeddingResponse)
    assert_in_order(response, ["hello"])
    assert response.usage is not None and response.usage.prompt_tokens == 2 == response.usage.total_tokens
    assert response.model == "text-embedding-3-small"
    assert response.hidden_params["custom_llm_provider"] == "openai"
    assert response.hidden_params["parts"] == 1
    assert isinstance(response.hidden_params["response_cost"], float)
    assert response.model_dump()["data"][0]["object"] == "embedding"


async def test_openai_list_over_2048_is_split_and_reassembled(
    client: AsyncClient, up: dict[str, Any], emulator: Any
) -> None:
    inputs = texts(5000)  # the emulator answers 400 above 2,048 inputs, like OpenAI
    response = await client.embedding("openai/emb-delay-20", inputs, **up)
    assert_in_order(response, inputs)
    assert response.hidden_params["parts"] == 3
    stats = await emulator.astats()
    assert stats["received"] == 3 and stats["completed"] == 3
    assert response.usage is not None and response.usage.prompt_tokens == sum(-(-len(t) // 4) for t in inputs)


async def test_unsplit_request_over_the_limit_is_refused_by_the_emulator(emulator: Any) -> None:
    # the limit the splitting test relies on is real: a raw request with 2,049 inputs gets OpenAI's 400
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.post(
            emulator.openai_base + "/embeddings",
            json={"model": "m", "input": texts(2049)},
            headers={"Authorization": "Bearer k"},
        ) as resp,
    ):
        assert resp.status == 400
        assert "2048" in (await resp.json())["error"]["message"]


def test_token_budget_splits_too() -> None:
    long_text = "x" * 400_000  # ~100,001 estimated tokens each
    parts = split_parts([long_text] * 7, 2048, 300_000)
    assert parts == [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert split_parts(["a"] * 5, 2, None) == [(0, 2), (2, 4), (4, 5)]


async def test_base64_from_openai(client: AsyncClient, up: dict[str, Any]) -> None:
    response = await client.embedding("openai/m", ["a", "bb"], encoding_format="base64", dimensions=4, **up)
    for item, text in zip(response.data, ["a", "bb"], strict=True):
        assert isinstance(item.embedding, str)
        decoded = list(struct.unpack("<4f", base64.b64decode(item.embedding)))
        assert decoded == expected_vector(text, 4)


async def test_azure_deployment(client: AsyncClient, emulator: Any) -> None:
    response = await client.embedding(
        "azure/my-embedder", texts(3), api_base=emulator.url, api_key="k", api_version="2024-10-21"
    )
    assert_in_order(response, texts(3))
    assert response.model == "my-embedder"


async def test_cohere_split_at_96_and_base64_made_locally(client: AsyncClient, emulator: Any) -> None:
    inputs = texts(200)
    response = await client.embedding("cohere/embed-v4.0", inputs, api_base=emulator.url, api_key="k")
    assert_in_order(response, inputs)
    assert response.hidden_params["parts"] == 3  # 96 + 96 + 8
    as_b64 = await client.embedding(
        "cohere/embed-v4.0", ["a"], api_base=emulator.url, api_key="k", encoding_format="base64", dimensions=4
    )
    assert list(struct.unpack("<4f", base64.b64decode(as_b64.data[0].embedding))) == expected_vector("a", 4)


async def test_cohere_input_type_is_passed(client: AsyncClient, emulator: Any) -> None:
    # the emulator, like Cohere, refuses a request without input_type; an explicit one goes through too
    response = await client.embedding(
        "cohere/embed-v4.0", ["q"], api_base=emulator.url, api_key="k", input_type="search_query"
    )
    assert_in_order(response, ["q"])


async def test_gemini_split_at_100_with_estimated_usage(client: AsyncClient, emulator: Any) -> None:
    inputs = texts(250)
    response = await client.embedding(
        "gemini/text-embedding-004", inputs, api_base=emulator.url, api_key="k", dimensions=16
    )
    assert_in_order(response, inputs, 16)
    assert response.hidden_params["parts"] == 3
    assert response.usage is not None and response.usage.prompt_tokens > 0


async def test_mistral_row_uses_the_openai_format(client: AsyncClient, up: dict[str, Any]) -> None:
    inputs = texts(600)  # over Mistral's 512 per request
    response = await client.embedding("mistral/mistral-embed", inputs, **up)
    assert_in_order(response, inputs)
    assert response.hidden_params["parts"] == 2


async def test_token_arrays_on_openai(client: AsyncClient, up: dict[str, Any]) -> None:
    response = await client.embedding("openai/m", [[1, 2, 3], [4]], **up)
    assert_in_order(response, ["1 2 3", "4"])
    one = await client.embedding("openai/m", [5, 6], **up)
    assert_in_order(one, ["5 6"])


async def test_max_concurrency_bounds_parts_in_flight(client: AsyncClient, up: dict[str, Any], emulator: Any) -> None:
    started = time.perf_counter()
    await client.embedding("openai/m-delay-100", texts(6 * 2048), max_concurrency=2, **up)
    elapsed = time.perf_counter() - started
    assert elapsed >= 0.29  # 6 parts, 2 at a time, 100 ms each


async def test_rpm_paces_parts(client: AsyncClient, up: dict[str, Any]) -> None:
    started = time.perf_counter()
    await client.embedding("openai/m", texts(3 * 2048), rpm=600, **up)  # one part every 100 ms
    assert time.perf_counter() - started >= 0.19


async def test_a_failing_part_fails_the_call(client: AsyncClient, up: dict[str, Any]) -> None:
    with pytest.raises(RateLimitError):
        await client.embedding("openai/m-status-429", texts(10), **up)


async def test_checkpoint_resumes_only_missing_parts(
    client: AsyncClient, up: dict[str, Any], emulator: Any, tmp_path: Path
) -> None:
    path = tmp_path / "parts.jsonl"
    inputs = texts(3 * 2048)
    # an interrupted run: only the first two parts got done (same model, same split)
    await client.embedding("openai/m", inputs[: 2 * 2048], checkpoint=str(path), **up)
    await emulator.areset()
    response = await client.embedding("openai/m", inputs, checkpoint=str(path), **up)
    assert (await emulator.astats())["received"] == 1  # only the missing part was sent
    assert_in_order(response, inputs)


async def test_checkpoint_records_a_failed_part_and_redoes_it(
    client: AsyncClient, up: dict[str, Any], emulator: Any, tmp_path: Path
) -> None:
    path = tmp_path / "parts.jsonl"
    with pytest.raises(InternalServerError):
        await client.embedding("openai/m-status-500-times-1", ["a"], checkpoint=str(path), **up)
    assert '"error"' in path.read_text()
    response = await client.embedding("openai/m-status-500-times-1", ["a"], checkpoint=str(path), **up)
    assert_in_order(response, ["a"])


async def test_checkpoint_skips_recorded_parts(
    client: AsyncClient, up: dict[str, Any], emulator: Any, tmp_path: Path
) -> None:
    path = tmp_path / "parts.jsonl"
    inputs = texts(3 * 2048)
    first = await client.embedding("openai/m", inputs, checkpoint=str(path), **up)
    await emulator.areset()
    again = await client.embedding("openai/m", inputs, checkpoint=str(path), **up)
    assert (await emulator.astats())["received"] == 0  # every part came from the file
    assert again.model_dump()["data"] == first.model_dump()["data"]


async def test_fan_out_gives_one_response_per_model(client: AsyncClient, up: dict[str, Any]) -> None:
    results = await client.embedding("openai/a, mistral/b", ["x", "y"], **up)
    assert isinstance(results, list) and len(results) == 2
    assert [r.model for r in results] == ["a", "b"]
    for result in results:
        assert_in_order(result, ["x", "y"])
    as_list = await client.embedding(["openai/a", "openai/c-status-500"], ["x"], return_exceptions=True, **up)
    assert isinstance(as_list[0], EmbeddingResponse) and isinstance(as_list[1], InternalServerError)
    with pytest.raises(AllModelsFailedError):
        await client.embedding("openai/a-status-500, openai/b-status-500", ["x"], **up)


@pytest.mark.parametrize(
    ("value", "options"),
    [
        ([], {}),
        ("", {}),
        (["ok", ""], {}),
        (["ok", 3], {}),
        ([{"text": "x"}], {}),
        (None, {}),
        (["ok"], {"encoding_format": "int8"}),
        (["ok"], {"dimensions": 0}),
    ],
)
async def test_bad_input_fails_before_any_request(
    client: AsyncClient, up: dict[str, Any], emulator: Any, value: Any, options: dict[str, Any]
) -> None:
    with pytest.raises(BadRequestError):
        await client.embedding("openai/m", value, **up, **options)
    assert (await emulator.astats())["received"] == 0


async def test_unsupported_provider_and_params(client: AsyncClient, emulator: Any) -> None:
    with pytest.raises(UnsupportedParamsError, match="embeddings"):
        await client.embedding("anthropic/claude-x", ["a"], api_key="k")
    with pytest.raises(UnsupportedParamsError, match="user"):
        await client.embedding("cohere/embed-v4.0", ["a"], user="u", api_base=emulator.url, api_key="k")
    dropped = await client.embedding(
        "cohere/embed-v4.0", ["a"], user="u", drop_params=True, api_base=emulator.url, api_key="k"
    )
    assert len(dropped.data) == 1
    with pytest.raises(UnsupportedParamsError, match="token arrays"):
        await client.embedding("cohere/embed-v4.0", [[1, 2]], api_base=emulator.url, api_key="k")


def test_sync_client_and_module_functions(emulator: Any) -> None:
    with Client(num_retries=0) as c:
        response = c.embedding("openai/m", ["s"], api_base=emulator.openai_base, api_key="k")
        assert_in_order(response, ["s"])
    response = llmplex.embedding("openai/m", "t", api_base=emulator.openai_base, api_key="k")
    assert_in_order(response, ["t"])


async def test_module_aembedding(emulator: Any) -> None:
    response = await llmplex.aembedding(model="openai/m", input=["u"], api_base=emulator.openai_base, api_key="k")
    assert_in_order(response, ["u"])


def test_split_fast_path_agrees_with_the_item_by_item_split() -> None:
    texts_ = ["x" * n for n in range(0, 40, 3)] * 5
    tokens = [[1] * n for n in range(1, 30, 4)] * 5
    for items in (texts_, tokens):
        for budget in (None, 10, 50, 10_000):
            parts = split_parts(items, 2048, budget)
            assert parts[0][0] == 0 and parts[-1][1] == len(items)
            if budget is not None:
                from llmplex._embedding_call import estimate_input_tokens

                for start, end in parts:
                    cost = sum(estimate_input_tokens(i) for i in items[start:end])
                    assert cost <= budget or end - start == 1


async def test_embeddings_have_their_own_response_cap(emulator: Any) -> None:
    """An embeddings answer may pass ``max_response_bytes`` (2,048 x 3,072 floats is ~135 MB of JSON): it has
    ``max_embedding_response_bytes``; past that it is refused like any other body."""
    inputs = texts(64)
    options: dict[str, Any] = {"api_base": emulator.openai_base, "api_key": "sk-x", "dimensions": 1024}
    config = llmplex.ClientConfig.from_env({})
    async with AsyncClient(config, num_retries=0, max_response_bytes=64 * 1024) as c:
        response = await c.embedding("openai/text-embedding-3-small", inputs, **options)
        assert len(response.data) == 64 and len(response.data[0].embedding) == 1024
        with pytest.raises(StreamError, match="max_response_bytes"):  # the same size as a chat answer: refused
            await c.completion(
                "openai/m-fault-hugebody-mib-1",
                [{"role": "user", "content": "hi"}],
                api_base=emulator.openai_base,
                api_key="sk-x",
            )
    async with AsyncClient(config, num_retries=0, max_embedding_response_bytes=64 * 1024) as c:
        with pytest.raises(StreamError, match="max_embedding_response_bytes"):
            await c.embedding("openai/text-embedding-3-small", inputs, **options)
