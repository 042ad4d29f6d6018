"""LiteLLM's file and batch functions against the emulator's OpenAI, Azure, Anthropic and Gemini batch APIs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import llmplex
from llmplex import AsyncClient, BadRequestError
from llmplex.batches import ops


def _lines(texts: list[str], model: str) -> bytes:
    rows = [
        {
            "custom_id": f"c{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 20},
        }
        for i, text in enumerate(texts)
    ]
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def _settings(emulator: Any, provider: str, tmp_path: Path) -> dict[str, Any]:
    base = {"openai": emulator.openai_base, "azure": emulator.url}.get(provider, emulator.url)
    return {"custom_llm_provider": provider, "api_base": base, "api_key": "k", "files_dir": str(tmp_path)}


@pytest.mark.parametrize(
    ("provider", "model"),
    [("openai", "gpt-polls-2"), ("azure", "dep-polls-2"), ("anthropic", "claude-polls-2"), ("gemini", "gem-polls-2")],
)
async def test_file_batch_round_trip(
    client: AsyncClient, emulator: Any, tmp_path: Path, provider: str, model: str
) -> None:
    opts = _settings(emulator, provider, tmp_path)
    data = _lines(["one two", "emulator-status-400 bad"], model)
    uploaded = await ops.create_file(client, ("in.jsonl", data), "batch", **opts)
    assert uploaded.purpose == "batch" and uploaded.bytes == len(data)
    assert (await ops.file_retrieve(client, uploaded.id, **opts)).id == uploaded.id
    assert uploaded.id in [f.id for f in (await ops.file_list(client, **opts)).data]
    assert (await ops.file_content(client, uploaded.id, **opts)).content == data
    batch = await ops.create_batch(client, "24h", "/v1/chat/completions", uploaded.id, metadata=None, **opts)
    assert batch.status == "in_progress" and batch.hidden_params["custom_llm_provider"] == provider
    assert (await ops.retrieve_batch(client, batch.id, **opts)).status == "in_progress"
    done = await ops.retrieve_batch(client, batch.id, **opts)
    assert done.status == "completed"
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (2, 1, 1)
    assert done.output_file_id and done.error_file_id
    [ok] = list((await ops.file_content(client, done.output_file_id, **opts)).json_lines())
    assert ok["custom_id"] == "c0" and ok["response"]["status_code"] == 200
    assert ok["response"]["body"]["object"] == "chat.completion"
    assert ok["response"]["body"]["choices"][0]["message"]["content"] == "Echo: one two"
    [bad] = list((await ops.file_content(client, done.error_file_id, **opts)).json_lines())
    assert bad["custom_id"] == "c1" and bad["response"]["status_code"] == 400
    assert batch.id in [b.id for b in (await ops.list_batches(client, limit=100, **opts)).data]
    assert (await ops.file_delete(client, uploaded.id, **opts)).deleted
    with pytest.raises(llmplex.NotFoundError):
        await ops.file_retrieve(client, uploaded.id, **opts)


@pytest.mark.parametrize(("provider", "model"), [("openai", "m-polls-3"), ("anthropic", "c-polls-3")])
async def test_cancel_batch(client: AsyncClient, emulator: Any, tmp_path: Path, provider: str, model: str) -> None:
    opts = _settings(emulator, provider, tmp_path)
    uploaded = await ops.create_file(client, _lines(["x"], model), "batch", **opts)
    batch = await ops.create_batch(client, input_file_id=uploaded.id, **opts)
    assert (await ops.cancel_batch(client, batch.id, **opts)).status == "cancelling"
    for _ in range(3):
        final = await ops.retrieve_batch(client, batch.id, **opts)
    assert final.status == "cancelled"


async def test_bad_inputs_are_typed_errors(client: AsyncClient, emulator: Any, tmp_path: Path) -> None:
    opts = _settings(emulator, "anthropic", tmp_path)
    with pytest.raises(BadRequestError, match="line 2: not valid JSON"):
        await ops.create_file(client, _lines(["a"], "c") + b"{oops\n", "batch", **opts)
    with pytest.raises(BadRequestError, match="completion_window"):
        await ops.create_batch(client, "48h", input_file_id="file-x", **opts)
    with pytest.raises(BadRequestError, match="Providers with one: anthropic, azure, gemini, groq, openai"):
        await ops.list_batches(client, custom_llm_provider="cohere", api_key="k")
    with pytest.raises(llmplex.AuthenticationError):
        await ops.list_batches(client, api_base=emulator.openai_base, api_key="bad-key")


def test_module_level_sync_functions(emulator: Any, tmp_path: Path) -> None:
    opts = {"api_base": emulator.openai_base, "api_key": "k", "num_retries": 0}
    uploaded = llmplex.create_file(("in.jsonl", _lines(["hi"], "m-polls-0")), purpose="batch", **opts)
    batch = llmplex.create_batch(completion_window="24h", input_file_id=uploaded.id, **opts)
    assert batch.status == "completed"  # polls-0: ended at creation
    assert batch.output_file_id is not None
    assert b"Echo: hi" in llmplex.file_content(batch.output_file_id, **opts).content
    assert llmplex.retrieve_batch(batch.id, **opts).id == batch.id
    assert llmplex.file_delete(uploaded.id, **opts).deleted


async def test_module_level_async_functions(emulator: Any) -> None:
    opts = {"api_base": emulator.openai_base, "api_key": "k", "num_retries": 0}
    uploaded = await llmplex.acreate_file(("in.jsonl", _lines(["hi"], "m-polls-0")), purpose="batch", **opts)
    batch = await llmplex.acreate_batch(input_file_id=uploaded.id, **opts)
    assert (await llmplex.aretrieve_batch(batch.id, **opts)).status == "completed"
    assert batch.id in [b.id for b in (await llmplex.alist_batches(limit=50, **opts)).data]
