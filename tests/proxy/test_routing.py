"""Routing inside a model_name group over HTTP: retries, fallbacks, cooldowns, rpm limits, strategies."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model

MESSAGES = [{"role": "user", "content": "route me"}]


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    base = emulator.openai_base
    return proxy_factory(
        {
            "model_list": [
                openai_model("target", "target", base),
                openai_model("failing", "failing-status-503", base),
                openai_model("flaky", "flaky-status-503-times-1", base),
                openai_model("pair", "pair-a-status-500", base),
                openai_model("pair", "pair-b", base),
                openai_model("limited", "limited", base, rpm=2),
                openai_model("limited-fb", "limited-fb", base, rpm=1),
                openai_model("weighted", "w-heavy", base, weight=1),
                openai_model("weighted", "w-never", base, weight=0),
            ],
            "router_settings": {
                "num_retries": 1,
                "allowed_fails": 0,
                "cooldown_time": 60,
                "fallbacks": [{"failing": ["target"]}, {"limited-fb": ["target"]}],
                "queue_timeout": 0,  # LiteLLM's 429 at once (the waiting line: tests/proxy/test_queue.py)
            },
        }
    )


async def post(proxy: ProxyServer, model: str) -> tuple[int, Any, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.post(proxy.base + "/chat/completions", json={"model": model, "messages": MESSAGES}) as resp,
    ):
        return resp.status, await resp.json(content_type=None), resp.headers


async def test_fallback_on_failure(proxy: ProxyServer) -> None:
    status, body, headers = await post(proxy, "failing")
    assert status == 200
    assert body["model"] == "target"
    assert headers["x-llmplex-model"] == "failing"


async def test_num_retries_recovers_from_a_transient_failure(proxy: ProxyServer) -> None:
    status, body, _ = await post(proxy, "flaky")
    assert status == 200 and body["model"] == "flaky-status-503-times-1"


async def test_failed_deployment_cools_down(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    for _ in range(30):  # until the random choice has hit the failing deployment once (p = 1/2 per request)
        before = (await emulator.astats())["received"]
        status, body, _ = await post(proxy, "pair")
        assert status == 200 and body["model"] == "pair-b"  # the retry went to the healthy one
        if (await emulator.astats())["received"] - before == 2:
            break
    else:
        pytest.fail("the failing deployment was never chosen")
    before = (await emulator.astats())["received"]
    for _ in range(6):
        status, body, _ = await post(proxy, "pair")
        assert status == 200 and body["model"] == "pair-b"
    assert (await emulator.astats())["received"] - before == 6  # the cooled-down one was not called


async def test_rpm_limit_gives_429_with_retry_after(proxy: ProxyServer) -> None:
    for _ in range(2):
        status, _, _ = await post(proxy, "limited")
        assert status == 200
    status, body, headers = await post(proxy, "limited")
    assert status == 429
    assert 1 <= int(headers["retry-after"]) <= 60
    assert "limited" in body["error"]["message"]


async def test_rpm_limit_falls_back(proxy: ProxyServer) -> None:
    status, body, _ = await post(proxy, "limited-fb")
    assert status == 200 and body["model"] == "limited-fb"
    status, body, _ = await post(proxy, "limited-fb")
    assert status == 200 and body["model"] == "target"


async def test_weights_steer_simple_shuffle(proxy: ProxyServer) -> None:
    for _ in range(10):
        status, body, _ = await post(proxy, "weighted")
        assert status == 200 and body["model"] == "w-heavy"


async def test_latency_based_routing_prefers_the_fast_deployment(proxy_factory: Any, emulator: EmulatorServer) -> None:
    base = emulator.openai_base
    server = proxy_factory(
        {
            "model_list": [openai_model("lat", "lat-slow-delay-250", base), openai_model("lat", "lat-fast", base)],
            "router_settings": {"routing_strategy": "latency-based-routing"},
        }
    )
    warmup = {(await post(server, "lat"))[1]["model"] for _ in range(2)}
    assert warmup == {"lat-slow-delay-250", "lat-fast"}  # each unmeasured deployment is tried once
    for _ in range(4):
        status, body, _ = await post(server, "lat")
        assert status == 200 and body["model"] == "lat-fast"
