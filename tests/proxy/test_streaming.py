"""SSE pass-through: chunks as they arrive, [DONE], a mid-stream error event, disconnects close the upstream."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import openai
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model

MESSAGES = [{"role": "user", "content": "one two three four"}]


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    base = emulator.openai_base
    return proxy_factory(
        {
            "model_list": [
                openai_model("streamer", "streamer-chunks-4", base),
                openai_model("slow-chunks", "slowchunks-chunks-3-chunkdelay-300", base),
                openai_model("midstream", "mid-fault-midstream", base),
                openai_model("stall", "stall-fault-stall", base),
            ]
        }
    )


def test_openai_sync_stream(proxy: ProxyServer) -> None:
    with openai.OpenAI(base_url=proxy.base, api_key="unused", max_retries=0) as client:
        stream = client.chat.completions.create(model="streamer", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        texts = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(texts) == "Echo: one two three four"
    assert sum(1 for t in texts if t) == 4


async def test_openai_async_stream_with_usage(proxy: ProxyServer) -> None:
    async with openai.AsyncOpenAI(base_url=proxy.base, api_key="unused", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="streamer",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: one two three four"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


async def test_raw_wire_format_and_no_buffering(proxy: ProxyServer) -> None:
    arrivals: list[tuple[float, bytes]] = []
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            proxy.base + "/chat/completions", json={"model": "slow-chunks", "messages": MESSAGES, "stream": True}
        ) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        async for line in resp.content:
            if line.strip():
                arrivals.append((time.monotonic(), line))
    lines = [line for _, line in arrivals]
    assert all(line.startswith(b"data: ") for line in lines)  # data lines only, no event: names
    assert lines[-1] == b"data: [DONE]\n"
    content_times = [t for t, line in arrivals if b'"content":"' in line and b'"content":""' not in line]
    assert len(content_times) == 3
    assert content_times[-1] - content_times[0] >= 0.45  # each chunk was forwarded when it came, not at the end


async def test_midstream_error_becomes_one_error_event(proxy: ProxyServer) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            proxy.base + "/chat/completions", json={"model": "midstream", "messages": MESSAGES, "stream": True}
        ) as resp,
    ):
        assert resp.status == 200
        body = await resp.read()
    events = [e for e in body.split(b"\n\n") if e]
    assert events[-1].startswith(b'data: {"error":')
    assert b"[DONE]" not in body
    assert sum(1 for e in events if b'"error"' in e) == 1

    async with openai.AsyncOpenAI(base_url=proxy.base, api_key="unused", max_retries=0) as client:
        stream = await client.chat.completions.create(model="midstream", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass


async def test_client_disconnect_closes_the_upstream(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    before = await emulator.astats()
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            proxy.base + "/chat/completions", json={"model": "stall", "messages": MESSAGES, "stream": True}
        )
        assert resp.status == 200
        first = await asyncio.wait_for(resp.content.readline(), timeout=5)
        assert first.startswith(b"data: ")
        left_at = time.monotonic()
        resp.close()  # the client leaves while the upstream is silent
    stats = await emulator.wait_for(lambda s: s["disconnected"] > before["disconnected"], timeout=2.0)
    assert stats["disconnected"] == before["disconnected"] + 1
    assert time.monotonic() - left_at < 1.0
