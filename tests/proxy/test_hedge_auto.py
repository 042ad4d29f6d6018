"""Adaptive hedging in the proxy (``"hedge_delay": "auto"``), against the real emulator; sharing through real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from llmplex._latency import MIN_SAMPLES
from llmplex.proxy import ProxyConfig
from llmplex.router.deployments import Deployment
from llmplex.router.state import make_state
from llmplex.router.state.shared import RedisState
from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model
from tests.router.test_redis_state import REDIS_URL, delete_prefix, require_redis

MESSAGES = [{"role": "user", "content": "hedge me"}]
HEADER = "x-llmplex-hedge-delay-ms"


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    base = emulator.openai_base
    return proxy_factory(
        {
            "model_list": [
                openai_model("fresh", "fresh-delay-100", base),
                openai_model("warm", "warm-delay-100", base),
                openai_model("inside", "inside-delay-100", base),
                openai_model("slow", "slow-delay-1000", base),
                openai_model("backup", "backup-delay-20", base),
            ]
        }
    )


def seed(proxy: ProxyServer, group: str, samples_ms: list[float]) -> None:
    """Latency statistics as if the group had answered this fast (the router's own recording API).

    Called while the proxy is idle, so its serving thread does not touch these statistics meanwhile.
    """
    state = proxy.app.state.llmplex.router.state
    deployment = next(d for d in proxy.config.deployments if d.model_name == group)
    for ms in samples_ms:
        state.record_success(deployment, ms, 0)


async def post(proxy: ProxyServer, body: dict[str, Any]) -> tuple[int, Any, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.post(proxy.base + "/chat/completions", json=body) as resp,
    ):
        return resp.status, await resp.json(content_type=None), resp.headers


def race(models: str, **extra: Any) -> dict[str, Any]:
    return {"model": models, "messages": MESSAGES, "fastest_response": True, "hedge_delay": "auto", **extra}


async def test_no_samples_uses_the_default_delay(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    before = await emulator.astats()
    status, body, headers = await post(proxy, race("fresh, backup"))
    assert status == 200, body
    assert headers[HEADER] == "500.000"
    assert headers["x-llmplex-model"] == "fresh"
    await asyncio.sleep(0.05)
    assert (await emulator.astats())["received"] - before["received"] == 1  # the backup never started


async def test_answers_teach_the_delay(proxy: ProxyServer) -> None:
    for _ in range(MIN_SAMPLES + 2):  # sequential real ~100 ms answers through the router
        status, _, _ = await post(proxy, {"model": "warm", "messages": MESSAGES})
        assert status == 200
    status, _, headers = await post(proxy, race("warm, backup"))
    assert status == 200
    assert 100.0 <= float(headers[HEADER]) < 400.0


async def test_backup_not_started_within_the_delay(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    seed(proxy, "inside", [400.0] * MIN_SAMPLES)
    before = await emulator.astats()
    status, _, headers = await post(proxy, race("inside, backup"))
    assert status == 200
    assert headers[HEADER] == "400.000" and headers["x-llmplex-model"] == "inside"
    await asyncio.sleep(0.05)
    assert (await emulator.astats())["received"] - before["received"] == 1


async def test_backup_started_when_the_primary_is_slow(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    seed(proxy, "slow", [float(ms) for ms in range(60, 160, 10)])  # p90 = 141 ms
    before = await emulator.astats()
    t0 = time.perf_counter()
    status, _, headers = await post(proxy, race("slow, backup"))
    assert status == 200
    assert headers[HEADER] == "141.000" and headers["x-llmplex-model"] == "backup"
    assert 0.141 <= time.perf_counter() - t0 < 0.7
    assert (await emulator.astats())["received"] - before["received"] == 2
    # the cut-off primary was recorded at its elapsed time (>= the delay): the p50 of 11 samples is 110 ms
    status, _, headers = await post(proxy, race("slow, backup", hedge_quantile=0.5))
    assert status == 200 and headers[HEADER] == "110.000"


async def test_fixed_delays_are_reported_too(proxy: ProxyServer) -> None:
    status, _, headers = await post(proxy, race("fresh, backup", hedge_delay=0.25))
    assert status == 200 and headers[HEADER] == "250.000"
    status, _, headers = await post(proxy, race("fresh, backup", hedge_delay=None))
    assert status == 200 and HEADER not in headers


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"hedge_delay": "fast"}, "hedge_delay"),
        ({"hedge_delay": "AUTO"}, "hedge_delay"),
        ({"hedge_quantile": 0}, "hedge_quantile"),
        ({"hedge_quantile": 1.01}, "hedge_quantile"),
        ({"hedge_quantile": "p90"}, "hedge_quantile"),
        ({"hedge_quantile": True}, "hedge_quantile"),
        ({"hedge_delay": 0.3, "hedge_quantile": 0.9}, "hedge_quantile"),
    ],
)
async def test_bad_hedge_fields_are_a_400(proxy: ProxyServer, extra: dict[str, Any], param: str) -> None:
    status, body, _ = await post(proxy, race("fresh, backup", **extra))
    assert status == 400, body
    assert body["error"]["param"] == param


# --- shared through Redis ---------------------------------------------------------------------------


@pytest.fixture
async def pair() -> AsyncIterator[tuple[RedisState, RedisState]]:
    require_redis()
    prefix = f"llmplex-test-{uuid.uuid4().hex[:12]}"
    config = ProxyConfig.from_dict(
        {
            "model_list": [{"model_name": "g", "litellm_params": {"model": "openai/a", "api_key": "k"}}],
            "router_settings": {"redis_url": REDIS_URL},
            "llmplex_settings": {"redis_key_prefix": prefix},
        },
        environ={},
    )
    states = (
        make_state(config.deployments, config.router, config.redis),
        make_state(config.deployments, config.router, config.redis),
    )
    assert isinstance(states[0], RedisState) and isinstance(states[1], RedisState)
    try:
        for state in states:
            await state.start()
        yield states
    finally:
        for state in states:
            await state.close()
        delete_prefix(REDIS_URL, prefix)


async def test_samples_are_shared_and_bounded(pair: tuple[RedisState, RedisState]) -> None:
    a, b = pair
    deployment: Deployment = a.deployments[0]
    for ms in range(1, 71):  # 70 samples in one process; the shared window keeps the last 64
        a.record_success(deployment, float(ms), 0)
    a.record_success(deployment, 5000.0, 0, whole=False)  # a stream's header latency is no sample
    assert await a.sync_once() and await b.sync_once()
    assert b.latency_samples(deployment) == [float(ms) for ms in range(7, 71)]
    b.record_latency(deployment, 99.5)
    assert await b.sync_once() and await a.sync_once()
    assert a.latency_samples(deployment)[-1] == 99.5 and len(a.latency_samples(deployment)) == 64
