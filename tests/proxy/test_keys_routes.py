"""A virtual key's model list, limits and spend on the routes beyond chat: /v1/embeddings, /v1/completions,
/v1/messages (+ count_tokens: the model list only) and /v1/batches (every line's model, at create time).
Real proxy, emulator upstream, the openai and anthropic SDKs as clients."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer
from tests.proxy.keys_support import call, eventually, keys_config


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def proxy(proxy_factory: Callable[[Any], ProxyServer], emulator: EmulatorServer, tmp_path: Path) -> ProxyServer:
    config = keys_config(emulator, f"sqlite:///{tmp_path / 'keys.db'}")
    config["llmplex_settings"] = {"data_dir": str(tmp_path)}  # uploaded batch files too, not ./.llmplex

    def entry(name: str, model: str, base: str) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {"model": model, "api_base": base, "api_key": "k"}}

    config["model_list"] += [
        entry("emb-a", "openai/text-embedding-3-small", emulator.openai_base),
        entry("emb-b", "openai/text-embedding-3-large", emulator.openai_base),
        entry("claude-a", "anthropic/claude-3-5-haiku-latest", emulator.url),
        entry("claude-b", "anthropic/claude-3-5-sonnet-latest", emulator.url),
    ]
    return proxy_factory(config)


async def _key(http: aiohttp.ClientSession, proxy: ProxyServer) -> dict[str, Any]:
    status, made, _ = await call(http, proxy.url, "/key/generate", {"models": ["cheap", "emb-a", "claude-a"]})
    assert status == 200, made
    return dict(made)


async def test_embeddings_and_completions_apply_the_key(proxy: ProxyServer, http: aiohttp.ClientSession) -> None:
    made = await _key(http, proxy)
    async with openai.AsyncOpenAI(base_url=proxy.base, api_key=made["key"], max_retries=0, timeout=30) as client:
        raw = await client.embeddings.with_raw_response.create(model="emb-a", input=["hello", "keys"])
        assert len(raw.parse().data) == 2
        assert float(raw.headers["x-litellm-key-spend"]) >= 0 and raw.headers["x-litellm-key-rpm-limit"] == "None"
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await client.embeddings.create(model="emb-b", input="hello")
        assert "'emb-b'" in denied.value.message

        text = await client.completions.with_raw_response.create(model="cheap", prompt="hello keys", max_tokens=5)
        assert text.parse().choices and "x-litellm-key-spend" in text.headers
        with pytest.raises(openai.PermissionDeniedError):
            await client.completions.create(model="smart", prompt="hello keys")

    async def logged() -> bool:
        status, logs, _ = await call(http, proxy.url, f"/spend/logs?api_key={made['key']}", None)
        assert status == 200
        kinds = {row["call_type"]: row for row in logs}
        return "aembedding" in kinds and "atext_completion" in kinds

    await eventually(logged, 3.0)
    _, logs, _ = await call(http, proxy.url, f"/spend/logs?api_key={made['key']}", None)
    [embedding] = [row for row in logs if row["call_type"] == "aembedding"]
    assert embedding["model_group"] == "emb-a" and embedding["prompt_tokens"] > 0 and embedding["spend"] > 0
    assert embedding["status"] == "success"
    assert len(logs) == 2  # the refused calls never reached an upstream and cost nothing

    async def spent() -> bool:
        status, info, _ = await call(http, proxy.url, f"/key/info?key={made['token_id']}", None)
        return bool(status == 200 and info["info"]["spend"] > 0)

    await eventually(spent, 3.0)


async def test_messages_and_count_tokens_apply_the_model_list(proxy: ProxyServer, http: aiohttp.ClientSession) -> None:
    made = await _key(http, proxy)
    messages: Any = [{"role": "user", "content": "hello keys"}]
    async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key=made["key"], max_retries=0, timeout=30) as claude:
        raw = await claude.messages.with_raw_response.create(model="claude-a", max_tokens=20, messages=messages)
        assert (await raw.parse()).content and "x-litellm-key-spend" in raw.headers
        with pytest.raises(anthropic.PermissionDeniedError) as denied:
            await claude.messages.create(model="claude-b", max_tokens=20, messages=messages)
        assert "claude-b" in str(denied.value)
        counted = await claude.messages.count_tokens(model="claude-a", messages=messages)
        assert counted.input_tokens > 0
        with pytest.raises(anthropic.PermissionDeniedError):
            await claude.messages.count_tokens(model="claude-b", messages=messages)

    async def logged() -> bool:
        status, logs, _ = await call(http, proxy.url, f"/spend/logs?api_key={made['key']}", None)
        return bool(status == 200 and [row["call_type"] for row in logs] == ["anthropic_messages"])

    await eventually(logged, 3.0)  # count_tokens is not charged


def _jsonl(models: list[str]) -> bytes:
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]},
        }
        for i, model in enumerate(models)
    ]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


async def test_batch_create_checks_every_line_model(proxy: ProxyServer, http: aiohttp.ClientSession) -> None:
    made = await _key(http, proxy)
    async with openai.AsyncOpenAI(base_url=proxy.base, api_key=made["key"], max_retries=0, timeout=30) as client:
        mixed = await client.files.create(file=("in.jsonl", io.BytesIO(_jsonl(["cheap", "smart"]))), purpose="batch")
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await client.batches.create(
                input_file_id=mixed.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        assert "'smart'" in denied.value.message
        allowed = await client.files.create(file=("ok.jsonl", io.BytesIO(_jsonl(["cheap", "cheap"]))), purpose="batch")
        batch = await client.batches.create(
            input_file_id=allowed.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert batch.status == "in_progress"
