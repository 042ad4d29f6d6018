"""The emulator's batch APIs, driven by each vendor's own client (openai, anthropic) or raw HTTP (Gemini)."""

from __future__ import annotations

import io
import json
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from tests.fixtures_emulator import EmulatorServer


def _openai_lines(models: list[str]) -> bytes:
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"hello {i}"}]},
        }
        for i, model in enumerate(models)
    ]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_openai_files_and_batches_with_the_openai_sdk(emulator: EmulatorServer) -> None:
    with openai.OpenAI(base_url=emulator.openai_base, api_key="k", max_retries=0) as client:
        _openai_round_trip(client)


def _openai_round_trip(client: openai.OpenAI) -> None:
    uploaded = client.files.create(
        file=("in.jsonl", io.BytesIO(_openai_lines(["gpt-polls-2", "m-status-400"]))), purpose="batch"
    )
    assert uploaded.purpose == "batch" and uploaded.bytes > 0
    assert client.files.retrieve(uploaded.id).id == uploaded.id
    assert uploaded.id in [f.id for f in client.files.list().data]
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"k": "v"}
    )
    assert batch.status == "in_progress" and batch.metadata == {"k": "v"}
    assert client.batches.retrieve(batch.id).status == "in_progress"  # polls-2: the 2nd retrieve ends it
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (2, 1, 1)
    assert done.output_file_id and done.error_file_id
    out = [json.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
    assert out[0]["custom_id"] == "r0"
    assert out[0]["response"]["body"]["choices"][0]["message"]["content"] == "Echo: hello 0"
    errors = [json.loads(line) for line in client.files.content(done.error_file_id).text.splitlines()]
    assert errors[0]["custom_id"] == "r1" and errors[0]["response"]["status_code"] == 400
    assert batch.id in [b.id for b in client.batches.list(limit=100).data]
    assert client.files.delete(uploaded.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)


def test_openai_batch_cancel_and_bad_key(emulator: EmulatorServer) -> None:
    with openai.OpenAI(base_url=emulator.openai_base, api_key="k", max_retries=0) as client:
        uploaded = client.files.create(file=("in.jsonl", io.BytesIO(_openai_lines(["m-polls-2"]))), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert client.batches.cancel(batch.id).status == "cancelling"
        client.batches.retrieve(batch.id)
        assert client.batches.retrieve(batch.id).status == "cancelled"
    with (
        openai.OpenAI(base_url=emulator.openai_base, api_key="bad-key", max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError),
    ):
        bad.batches.list()


def test_anthropic_message_batches_with_the_anthropic_sdk(emulator: EmulatorServer) -> None:
    with anthropic.Anthropic(base_url=emulator.url, api_key="k", max_retries=0) as client:
        _anthropic_round_trip(client)


def _anthropic_round_trip(client: anthropic.Anthropic) -> None:
    params = {"max_tokens": 16, "messages": [{"role": "user", "content": "hi there"}]}
    batch = client.messages.batches.create(
        requests=[
            {"custom_id": "a", "params": {"model": "claude-polls-2", **params}},  # type: ignore[typeddict-item]
            {"custom_id": "b", "params": {"model": "claude-status-400", **params}},  # type: ignore[typeddict-item]
        ]
    )
    assert batch.processing_status == "in_progress" and batch.request_counts.processing == 2
    assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.results_url
    assert (ended.request_counts.succeeded, ended.request_counts.errored) == (1, 1)
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["a"].type == "succeeded"
    assert results["a"].message.content[0].text == "Echo: hi there"  # type: ignore[union-attr]
    assert results["b"].type == "errored"
    assert batch.id in [b.id for b in client.messages.batches.list(limit=100).data]
    assert client.messages.batches.delete(batch.id).type == "message_batch_deleted"


def test_anthropic_batch_cancel(emulator: EmulatorServer) -> None:
    params: Any = {"model": "claude-polls-2", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}
    with anthropic.Anthropic(base_url=emulator.url, api_key="k", max_retries=0) as client:
        batches = client.messages.batches
        batch = batches.create(requests=[{"custom_id": "a", "params": params}])
        assert batches.cancel(batch.id).processing_status == "canceling"
        batches.retrieve(batch.id)
        ended = batches.retrieve(batch.id)
        assert ended.processing_status == "ended" and ended.request_counts.canceled == 1
        assert [r.result.type for r in batches.results(batch.id)] == ["canceled"]


async def test_gemini_batch_mode_over_raw_http(emulator: EmulatorServer) -> None:
    headers = {"x-goog-api-key": "k"}
    request = {"contents": [{"role": "user", "parts": [{"text": "bonjour"}]}]}
    body = {
        "batch": {
            "display_name": "t",
            "input_config": {
                "requests": {
                    "requests": [
                        {"request": request, "metadata": {"key": "one"}},
                        {"request": {"contents": []}, "metadata": {"key": "two"}},
                    ]
                }
            },
        }
    }
    base = emulator.url + "/v1beta"
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(f"{base}/models/gemini-2.0-flash-polls-2:batchGenerateContent", json=body) as resp:
            assert resp.status == 200
            operation = await resp.json()
        name = operation["name"]
        assert name.startswith("batches/") and operation["metadata"]["state"] == "BATCH_STATE_PENDING"
        async with session.get(f"{base}/{name}") as resp:
            assert (await resp.json())["metadata"]["state"] == "BATCH_STATE_RUNNING"
        async with session.get(f"{base}/{name}") as resp:
            done = await resp.json()
        assert done["done"] is True and done["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"
        first, second = done["response"]["inlinedResponses"]["inlinedResponses"]
        assert first["metadata"] == {"key": "one"}
        assert first["response"]["candidates"][0]["content"]["parts"][0]["text"] == "Echo: bonjour"
        assert second["error"]["code"] == 400
        async with session.get(f"{base}/batches") as resp:
            assert name in [op["name"] for op in (await resp.json())["operations"]]
        async with session.delete(f"{base}/{name}") as resp:
            assert resp.status == 200
        async with session.get(f"{base}/{name}") as resp:
            assert resp.status == 404
        async with session.get(f"{base}/batches", headers={"x-goog-api-key": "bad-key"}) as resp:
            assert resp.status == 400
