"""CI-sized load: 200 concurrent clients, 2,000 requests, half streamed, ~5 % of upstream calls faulted.

Every request must end with exactly the answer its model dictates (success, the right status, or one
SSE error event): zero lost, zero hung (each request is bounded), nothing in flight afterwards.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

import aiohttp
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model

CLIENTS = 200
REQUESTS = 2_000
FAULT_RATE = 0.05
REQUEST_TIMEOUT_S = 20.0
TOTAL_BUDGET_S = 30.0
MESSAGES = [{"role": "user", "content": "load test words"}]

# model -> what every request to it must end with, streamed and not
EXPECTED = {
    "ok": ("200", "done"),
    "rate-limited": ("429", "429"),
    "broken": ("500", "500"),
    "midstream": ("500", "error-event"),  # not streamed, the emulator answers a mid-stream fault with a 500
    "truncate": ("502", "error-event"),
}


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    base = emulator.openai_base
    return proxy_factory(
        {
            "model_list": [
                openai_model("ok", "ok-chunks-4", base),
                openai_model("rate-limited", "rl-status-429", base),
                openai_model("broken", "broken-status-500", base),
                openai_model("midstream", "mid-fault-midstream", base),
                openai_model("truncate", "cut-fault-truncate", base),
            ]
        }
    )


async def one(http: aiohttp.ClientSession, url: str, model: str, stream: bool) -> str:
    body = {"model": model, "messages": MESSAGES, "stream": stream}
    async with http.post(url, json=body) as resp:
        raw = await resp.read()
    if resp.status != 200:
        return str(resp.status)
    if not stream:
        return "200"
    last = [line for line in raw.split(b"\n") if line.startswith(b"data: ")][-1]
    if last == b"data: [DONE]":
        return "done"
    return "error-event" if last.startswith(b'data: {"error"') else "short:" + last[:60].decode()


async def test_200_clients_2000_requests_5_percent_faults(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    rng = random.Random(20261127)
    faulty = [m for m in EXPECTED if m != "ok"]
    jobs = [(rng.choice(faulty) if rng.random() < FAULT_RATE else "ok", rng.random() < 0.5) for _ in range(REQUESTS)]
    queue: asyncio.Queue[tuple[int, str, bool]] = asyncio.Queue()
    for i, (model, stream) in enumerate(jobs):
        queue.put_nowait((i, model, stream))
    outcomes: dict[int, str] = {}
    url = proxy.base + "/chat/completions"

    async def client(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            i, model, stream = queue.get_nowait()
            try:
                outcomes[i] = await asyncio.wait_for(one(http, url, model, stream), REQUEST_TIMEOUT_S)
            except TimeoutError:
                outcomes[i] = "hung"
            except aiohttp.ClientError as exc:
                outcomes[i] = f"lost: {exc!r}"

    before = await emulator.astats()
    started = time.monotonic()
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.wait_for(asyncio.gather(*(client(http) for _ in range(CLIENTS))), TOTAL_BUDGET_S)
    elapsed = time.monotonic() - started

    wrong = Counter()
    for i, (model, stream) in enumerate(jobs):
        expected = EXPECTED[model][1 if stream else 0]
        if outcomes.get(i) != expected:
            wrong[(model, stream, outcomes.get(i, "missing"))] += 1
    assert not wrong, wrong
    assert len(outcomes) == REQUESTS
    faulted = sum(1 for model, _ in jobs if model != "ok")
    assert 0.03 * REQUESTS < faulted < 0.07 * REQUESTS
    stats = await emulator.wait_for(lambda s: s["in_flight"] == 0, timeout=5.0)
    assert stats["received"] - before["received"] == REQUESTS  # the proxy retries nothing here
    assert proxy.app.state.llmplex.metrics.in_flight._value.get() == 0
    print(
        f"load: {REQUESTS} requests, {CLIENTS} clients, {faulted} faulted, {elapsed:.1f} s, "
        f"{REQUESTS / elapsed:.0f} req/s"
    )
