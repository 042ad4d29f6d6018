"""/v1/files and /v1/batches on a real proxy (uvicorn), driven by the openai SDK, the emulator upstream."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from tests.fixtures_proxy import ProxyServer, openai_model

Factory = Callable[[Any], ProxyServer]


def _config(emulator: Any, data_dir: Path, **own: Any) -> dict[str, Any]:
    return {
        "model_list": [
            openai_model("small", "m", emulator.openai_base),
            openai_model("broken", "m-status-400", emulator.openai_base),
        ],
        "llmplex_settings": {"data_dir": str(data_dir), **own},
    }


def _jsonl(rows: list[tuple[str, str]]) -> bytes:
    lines = [
        {
            "custom_id": custom_id,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"say {custom_id}"}]},
        }
        for custom_id, model in rows
    ]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def _wait(client: openai.OpenAI, batch_id: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in ("completed", "cancelled", "expired", "failed"):
            return batch
        assert time.monotonic() < deadline, batch
        time.sleep(0.05)


def test_files_and_batches_with_the_openai_sdk(proxy_factory: Factory, emulator: Any, tmp_path: Path) -> None:
    proxy = proxy_factory(_config(emulator, tmp_path))
    rows = [(f"r{i}", "small") for i in range(50)] + [("bad", "broken")]
    with openai.OpenAI(base_url=proxy.base, api_key="none", max_retries=0) as client:
        uploaded = client.files.create(file=("in.jsonl", io.BytesIO(_jsonl(rows))), purpose="batch")
        assert uploaded.purpose == "batch" and uploaded.filename == "in.jsonl"
        assert client.files.retrieve(uploaded.id).bytes == uploaded.bytes
        assert client.files.content(uploaded.id).content == _jsonl(rows)
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"job": "t"}
        )
        assert batch.status == "in_progress" and batch.metadata == {"job": "t"}
        done = _wait(client, batch.id)
        assert done.status == "completed" and done.completed_at and done.finalizing_at
        assert done.request_counts is not None
        assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (51, 50, 1)
        assert done.output_file_id and done.error_file_id
        out = [json.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
        assert [line["custom_id"] for line in out] == [f"r{i}" for i in range(50)]
        assert out[7]["response"]["status_code"] == 200
        assert out[7]["response"]["body"]["choices"][0]["message"]["content"] == "Echo: say r7"
        [error] = [json.loads(line) for line in client.files.content(done.error_file_id).text.splitlines()]
        assert error["custom_id"] == "bad" and error["response"]["status_code"] == 400
        assert "error" in error["response"]["body"]
        for file_id in (done.output_file_id, done.error_file_id):  # the size served, measured at finalize
            assert client.files.retrieve(file_id).bytes == len(client.files.content(file_id).content) > 0
        assert batch.id in [b.id for b in client.batches.list(limit=10).data]
        assert uploaded.id in [f.id for f in client.files.list().data]
        assert client.files.delete(uploaded.id).deleted
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(uploaded.id)


def test_cancel(proxy_factory: Factory, emulator: Any, tmp_path: Path) -> None:
    slow = [
        {
            "model_name": "slow",
            "litellm_params": {"model": "openai/m-delay-200", "api_base": emulator.openai_base, "api_key": "k"},
        }
    ]
    proxy = proxy_factory({**_config(emulator, tmp_path, batch_concurrency=1), "model_list": slow})
    with openai.OpenAI(base_url=proxy.base, api_key="none", max_retries=0) as client:
        uploaded = client.files.create(
            file=("in.jsonl", io.BytesIO(_jsonl([(f"s{i}", "slow") for i in range(20)]))), purpose="batch"
        )
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        cancelled = client.batches.cancel(batch.id)
        assert cancelled.status in ("cancelling", "cancelled")
        final = _wait(client, batch.id)
        assert final.status == "cancelled" and final.cancelled_at
        assert final.request_counts is not None and final.request_counts.completed < 20


@pytest.mark.parametrize(
    ("data", "purpose", "needle"),
    [
        (b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n', "batch", "line 1"),
        (_jsonl([("a", "small")]) + b"{not json\n", "batch", "line 2"),
        (_jsonl([("a", "small"), ("a", "small")]), "batch", "line 2"),
        (_jsonl([("a", "small")]), "fine-tune", "purpose"),
    ],
)
def test_bad_uploads_are_400s(
    proxy_factory: Factory, emulator: Any, tmp_path: Path, data: bytes, purpose: str, needle: str
) -> None:
    proxy = proxy_factory(_config(emulator, tmp_path))
    with openai.OpenAI(base_url=proxy.base, api_key="none", max_retries=0) as client:
        with pytest.raises(openai.BadRequestError, match=needle) as caught:
            client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose=purpose)  # type: ignore[arg-type]
        assert caught.value.status_code == 400


def test_bad_batches_are_400s(proxy_factory: Factory, emulator: Any, tmp_path: Path) -> None:
    proxy = proxy_factory(_config(emulator, tmp_path))
    with openai.OpenAI(base_url=proxy.base, api_key="none", max_retries=0) as client:
        unknown = client.files.create(
            file=("in.jsonl", io.BytesIO(_jsonl([("a", "small"), ("b", "nope")]))), purpose="batch"
        )
        with pytest.raises(openai.BadRequestError, match="line 2: unknown model 'nope'"):
            client.batches.create(input_file_id=unknown.id, endpoint="/v1/chat/completions", completion_window="24h")
        good = client.files.create(file=("in.jsonl", io.BytesIO(_jsonl([("a", "small")]))), purpose="batch")
        with pytest.raises(openai.BadRequestError, match="completion_window"):
            client.batches.create(input_file_id=good.id, endpoint="/v1/chat/completions", completion_window="48h")  # type: ignore[arg-type]
        with pytest.raises(openai.BadRequestError, match="endpoint"):
            client.batches.create(input_file_id=good.id, endpoint="/v1/embeddings", completion_window="24h")
        with pytest.raises(openai.BadRequestError, match="input_file_id"):
            client.batches.create(
                input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h"
            )
        with pytest.raises(openai.NotFoundError):
            client.batches.retrieve("batch_missing")


async def test_database_down_is_503_while_chat_serves(proxy_factory: Factory, emulator: Any, tmp_path: Path) -> None:
    config = _config(emulator, tmp_path)
    config["general_settings"] = {"database_url": "postgresql://postgres@127.0.0.1:9/nothing"}  # nothing listens
    proxy = proxy_factory(config)
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy.base + "/batches") as resp:
            assert resp.status == 503
            body = await resp.json()
            assert "database" in body["error"]["message"] and "postgres@" not in body["error"]["message"]
        chat = {"model": "small", "messages": [{"role": "user", "content": "hi"}]}
        async with session.post(proxy.base + "/chat/completions", json=chat) as resp:
            assert resp.status == 200


async def test_an_oversized_upload_is_refused_before_it_is_read(
    proxy_factory: Factory, emulator: Any, tmp_path: Path
) -> None:
    import asyncio

    proxy = proxy_factory(_config(emulator, tmp_path))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    head = (
        "POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 300000000\r\n\r\n"
    )
    writer.write(head.encode())
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    assert b" 400 " in status_line
    rest = await asyncio.wait_for(reader.read(65536), timeout=10)
    assert b"File too large" in rest
    writer.close()


async def test_batch_lines_leave_live_traffic_its_share_of_the_rate_limits(
    proxy_factory: Factory, emulator: Any, tmp_path: Path
) -> None:
    import asyncio

    limited = openai_model("limited", "m", emulator.openai_base, rpm=10)
    config = {
        "model_list": [limited],
        "llmplex_settings": {"data_dir": str(tmp_path), "rate_limit_window_seconds": 1, "batch_rate_reserve": 0.3},
    }
    proxy = proxy_factory(config)
    with openai.OpenAI(base_url=proxy.base, api_key="none", max_retries=0) as client:
        uploaded = client.files.create(
            file=("in.jsonl", io.BytesIO(_jsonl([(f"l{i}", "limited") for i in range(21)]))), purpose="batch"
        )
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    statuses = []
    chat = {"model": "limited", "messages": [{"role": "user", "content": "live"}]}
    async with aiohttp.ClientSession() as session:
        for _ in range(5):  # two live requests per 1 s window while the batch uses at most 7 of the 10
            async with session.post(proxy.base + "/chat/completions", json=chat) as resp:
                statuses.append(resp.status)
            await asyncio.sleep(0.5)
    assert statuses == [200] * 5
    with openai.OpenAI(base_url=proxy.base, api_key="none", max_retries=0) as client:
        final = await asyncio.to_thread(_wait, client, batch.id)
    assert final.request_counts.completed == 21 and final.request_counts.failed == 0  # waited, never failed


def test_native_batch_api_for_a_listed_group(proxy_factory: Factory, emulator: Any, tmp_path: Path) -> None:
    config = {
        "model_list": [
            openai_model("native", "nat-polls-2", emulator.openai_base),
            {
                "model_name": "claude",
                "litellm_params": {"model": "anthropic/claude-x", "api_base": emulator.url, "api_key": "k"},
            },
        ],
        "llmplex_settings": {
            "data_dir": str(tmp_path),
            "native_batches": ["native", "claude"],
            "batch_native_poll_seconds": 0.1,
        },
    }
    proxy = proxy_factory(config)
    emulator.reset()
    with openai.OpenAI(base_url=proxy.base, api_key="none", max_retries=0) as client:
        for group in ("native", "claude"):
            data = _jsonl([(f"{group}{i}", group) for i in range(5)])
            uploaded = client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch")
            batch = client.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            final = _wait(client, batch.id)
            assert final.status == "completed" and final.request_counts.completed == 5, final
            out = [json.loads(line) for line in client.files.content(final.output_file_id).text.splitlines()]
            assert [line["custom_id"] for line in out] == [f"{group}{i}" for i in range(5)]
            assert out[2]["response"]["body"]["choices"][0]["message"]["content"] == f"Echo: say {group}2"
    # answered by the providers' batch APIs: not one request reached the live chat routes
    assert emulator.stats()["received"] == 0
