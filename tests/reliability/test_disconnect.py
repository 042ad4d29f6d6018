"""A client that leaves stops its upstream call: non-streaming (while waiting for the answer) and streaming.

The emulator counts a request whose client left before the answer was fully sent as ``disconnected``;
the time from the client closing its socket to that counter moving is how fast the proxy let go.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp
import pytest

from tests.fixtures_emulator import EmulatorServer, Stats
from tests.fixtures_proxy import ProxyServer, openai_model

MESSAGES = [{"role": "user", "content": "hello there"}]
_LIMIT_S = 0.3  # the goal is 100 ms; the margin absorbs a loaded CI machine


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    base = emulator.openai_base
    return proxy_factory(
        {
            "model_list": [
                openai_model("slow", "slow-delay-5000", base),
                openai_model("long-stream", "long-chunks-500-chunkdelay-20", base),
                openai_model("stall", "stall-fault-stall", base),
                openai_model("race-a", "racea-delay-5000", base),
                openai_model("race-b", "raceb-delay-5000", base),
            ]
        }
    )


async def _time_until_disconnected(emulator: EmulatorServer, before: Stats, started: float, want: int = 1) -> float:
    await emulator.wait_for(lambda s: s["disconnected"] - before["disconnected"] >= want, timeout=3.0)
    return time.monotonic() - started


async def _settled(emulator: EmulatorServer) -> Stats:
    return await emulator.wait_for(lambda s: s["in_flight"] == 0, timeout=3.0)


@pytest.mark.parametrize("models", [["slow"], ["race-a", "race-b"]], ids=["single", "race"])
async def test_non_streaming_disconnect_cancels_the_upstream(
    proxy: ProxyServer, emulator: EmulatorServer, models: list[str]
) -> None:
    await _settled(emulator)
    before = await emulator.astats()
    body = {"model": models, "messages": MESSAGES, "fastest_response": len(models) > 1}
    async with aiohttp.ClientSession() as http:
        request = asyncio.ensure_future(http.post(proxy.base + "/chat/completions", json=body))
        await emulator.wait_for(lambda s: s["received"] - before["received"] >= len(models))
        left = time.monotonic()
        request.cancel()  # the client gives up: aiohttp closes the connection
        with contextlib.suppress(asyncio.CancelledError):
            await request
    elapsed = await _time_until_disconnected(emulator, before, left, want=len(models))
    stats = await _settled(emulator)
    assert stats["completed"] == before["completed"]  # the upstream never finished its 5 s answer
    print(f"non-streaming {models}: upstream closed {elapsed * 1000:.1f} ms after the client left")
    assert elapsed < _LIMIT_S


@pytest.mark.parametrize("model", ["long-stream", "stall"])
async def test_streaming_disconnect_closes_the_upstream_fast(
    proxy: ProxyServer, emulator: EmulatorServer, model: str
) -> None:
    await _settled(emulator)
    before = await emulator.astats()
    body = {"model": model, "messages": MESSAGES, "stream": True}
    async with aiohttp.ClientSession() as http:
        resp = await http.post(proxy.base + "/chat/completions", json=body)
        assert resp.status == 200
        first = await asyncio.wait_for(resp.content.readline(), 5.0)
        assert first.startswith(b"data: ")
        left = time.monotonic()
        resp.close()  # drop the connection mid-stream
    elapsed = await _time_until_disconnected(emulator, before, left)
    await _settled(emulator)
    print(f"streaming {model}: upstream closed {elapsed * 1000:.1f} ms after the client left")
    assert elapsed < _LIMIT_S
