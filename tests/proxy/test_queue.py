"""Queue instead of 429, and failover before the first token, through a real proxy (uvicorn on loopback),
the openai SDK and raw aiohttp against the emulator; Redis-shared limits with two proxies.

Short rate windows (``llmplex_settings.rate_limit_window_seconds``) keep these tests to seconds. The
emulator's ``/_emulator/arrivals`` gives the time of every upstream call: windows of the in-process state
are aligned on ``time.monotonic()`` (one clock per machine), windows of the Redis state on the Redis
server's clock (the wall clock here).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import openai
import orjson
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model
from tests.router.test_redis_state import REDIS_URL, delete_prefix, require_redis

Factory = Callable[[dict[str, Any]], ProxyServer]
MESSAGES: list[Any] = [{"role": "user", "content": "hello queue"}]


def unique(stem: str) -> str:
    return f"{stem}{uuid.uuid4().hex[:6]}"


async def arrivals(emulator: EmulatorServer, model: str, clock: int = 0) -> list[float]:
    """Times of the upstream calls for ``model`` (clock 0: monotonic, 1: wall)."""
    async with aiohttp.ClientSession() as session, session.get(emulator.url + "/_emulator/arrivals") as response:
        body = await response.json()
    return sorted(row[clock] for row in body["arrivals"] if row[2] == model)


async def early_in_a_window(window: float, needed: float) -> None:
    """Wait, when needed, until a fresh in-process rate window (aligned on the machine's monotonic clock) has
    at least ``needed`` seconds left: a test that fills a window must not see it roll over halfway."""
    left = window - time.monotonic() % window
    if left < needed:
        await asyncio.sleep(left + 0.05)


def per_window(times: list[float], window: float) -> Counter[int]:
    return Counter(int(t // window) for t in times)


async def post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], float]:
    started = time.monotonic()
    async with session.post(url + "/v1/chat/completions", json=body) as response:
        await response.read()
        headers = {name.lower(): value for name, value in response.headers.items()}
        return response.status, headers, time.monotonic() - started


def config(
    emulator: EmulatorServer, model: str, router: dict[str, Any], window: float, **params: Any
) -> dict[str, Any]:
    return {
        "model_list": [openai_model("g", model, emulator.openai_base, **params)],
        "router_settings": router,
        "llmplex_settings": {"rate_limit_window_seconds": window},
    }


async def test_requests_over_rpm_wait_for_the_next_window(emulator: EmulatorServer, proxy_factory: Factory) -> None:
    model = unique("w")
    proxy = proxy_factory(config(emulator, model, {"queue_timeout": 5}, 0.5, rpm=2))
    client = openai.AsyncOpenAI(base_url=proxy.base, api_key="x", max_retries=0)
    started = time.monotonic()
    results = await asyncio.gather(*[client.chat.completions.create(model="g", messages=MESSAGES) for _ in range(6)])
    elapsed = time.monotonic() - started
    await client.close()
    assert [r.choices[0].message.content for r in results] == ["Echo: hello queue"] * 6
    times = await arrivals(emulator, model)
    assert len(times) == 6 and max(per_window(times, 0.5).values()) <= 2
    assert len(per_window(times, 0.5)) >= 3  # spread over three windows: the later ones waited
    assert elapsed >= 0.5


async def test_the_wait_bound_answers_429_with_retry_after(emulator: EmulatorServer, proxy_factory: Factory) -> None:
    model = unique("b")
    proxy = proxy_factory(config(emulator, model, {"queue_timeout": 0.3}, 20.0, rpm=1))
    client = openai.AsyncOpenAI(base_url=proxy.base, api_key="x", max_retries=0)
    await early_in_a_window(20.0, 5.0)
    await client.chat.completions.create(model="g", messages=MESSAGES)  # the window's only request
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="g", messages=MESSAGES)
    waited = time.monotonic() - started
    await client.close()
    assert 0.28 <= waited < 2.0
    assert info.value.status_code == 429
    assert 1 <= int(info.value.response.headers["retry-after"]) <= 20
    assert len(await arrivals(emulator, model)) == 1


async def test_a_full_line_answers_429_at_once(emulator: EmulatorServer, proxy_factory: Factory) -> None:
    model = unique("l")
    proxy = proxy_factory(config(emulator, model, {"queue_timeout": 2, "queue_max_length": 2}, 20.0, rpm=1))
    await early_in_a_window(20.0, 5.0)  # the two waiting requests must time out, not meet the next window
    async with aiohttp.ClientSession() as session:
        body = {"model": "g", "messages": MESSAGES}
        results = await asyncio.gather(*[post(session, proxy.url, body) for _ in range(5)])
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200, 429, 429, 429, 429]
    quick = [elapsed for status, _, elapsed in results if status == 429 and elapsed < 1.0]
    waited = [elapsed for status, _, elapsed in results if status == 429 and elapsed >= 1.9]
    assert len(quick) == 2 and len(waited) == 2  # two refused at once (line full), two after the 2 s bound
    assert all("retry-after" in headers for status, headers, _ in results if status == 429)


async def test_priority_in_the_body_orders_the_line(emulator: EmulatorServer, proxy_factory: Factory) -> None:
    model = unique("p") + "-delay-200"
    proxy = proxy_factory({"model_list": [openai_model("g", model, emulator.openai_base, max_parallel_requests=1)]})
    order: list[str] = []
    async with aiohttp.ClientSession() as session:

        async def call(name: str, priority: int | None) -> None:
            body: dict[str, Any] = {"model": "g", "messages": [{"role": "user", "content": name}]}
            if priority is not None:
                body["priority"] = priority
            status, _, _ = await post(session, proxy.url, body)
            assert status == 200
            order.append(name)

        tasks = [asyncio.create_task(call("first", None))]
        await asyncio.sleep(0.1)
        for name, priority in [("late", 9), ("soon", 1), ("later", 9)]:
            tasks.append(asyncio.create_task(call(name, priority)))
            await asyncio.sleep(0.03)
        await asyncio.gather(*tasks)
        status, _, _ = await post(session, proxy.url, {"model": "g", "messages": MESSAGES, "priority": "high"})
    assert order == ["first", "soon", "late", "later"]
    assert status == 400


@pytest.fixture
def shared_prefix() -> Iterator[str]:
    require_redis()
    prefix = f"llmplex-test-queue-{uuid.uuid4().hex[:8]}"
    yield prefix
    delete_prefix(REDIS_URL, prefix)


async def test_two_proxies_sharing_redis_never_exceed_rpm(
    emulator: EmulatorServer, proxy_factory: Factory, shared_prefix: str
) -> None:
    model = unique("r")
    window = 0.5
    cfg = config(emulator, model, {"queue_timeout": 8, "redis_url": REDIS_URL}, window, rpm=3)
    cfg["llmplex_settings"]["redis_key_prefix"] = shared_prefix
    proxies = [proxy_factory(cfg), proxy_factory(cfg)]
    async with aiohttp.ClientSession() as session:
        body = {"model": "g", "messages": MESSAGES}
        results = await asyncio.gather(*[post(session, p.url, body) for p in proxies for _ in range(8)])
    assert [status for status, _, _ in results] == [200] * 16
    times = await arrivals(emulator, model, clock=1)
    counts = per_window(times, window)
    assert len(times) == 16 and max(counts.values()) <= 3, counts
    assert len(counts) >= 6  # 16 requests at 3 per window: at least six windows


async def test_a_stream_stalled_before_content_fails_over(emulator: EmulatorServer, proxy_factory: Factory) -> None:
    stalled, good = unique("s") + "-fault-rolestall", unique("g")
    proxy = proxy_factory(
        {
            "model_list": [
                # a role chunk, then silence; picked first (almost always: weights 1000 to 1)
                openai_model("a", stalled, emulator.openai_base, stream_timeout=0.3, weight=1000),
                openai_model("a", good, emulator.openai_base, weight=1),
            ],
            "router_settings": {"num_retries": 1},
        }
    )
    client = openai.AsyncOpenAI(base_url=proxy.base, api_key="x", max_retries=0)
    seen_stalled = False
    for _ in range(3):  # until the router picked the stalled deployment first (the first time, but for 1 in 1000)
        stream = await client.chat.completions.create(model="a", messages=MESSAGES, stream=True)
        chunks = [chunk async for chunk in stream]
        assert {c.model for c in chunks} == {good}  # one clean stream, from the good deployment only
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: hello queue"
        assert sum(1 for c in chunks if c.choices and c.choices[0].delta.role) == 1
        seen_stalled = seen_stalled or len(await arrivals(emulator, stalled)) > 0
        if seen_stalled:
            break
    await client.close()
    assert seen_stalled


async def test_a_stream_that_ends_before_content_fails_over(emulator: EmulatorServer, proxy_factory: Factory) -> None:
    broken, good = unique("e") + "-fault-roleend", unique("g")
    proxy = proxy_factory(
        {
            "model_list": [
                openai_model("a", broken, emulator.openai_base),
                openai_model("b", good, emulator.openai_base),
            ],
            "router_settings": {"fallbacks": [{"a": ["b"]}]},
        }
    )
    client = openai.AsyncOpenAI(base_url=proxy.base, api_key="x", max_retries=0)
    stream = await client.chat.completions.create(model="a", messages=MESSAGES, stream=True)
    chunks = [chunk async for chunk in stream]
    await client.close()
    assert {c.model for c in chunks} == {good}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: hello queue"
    assert len(await arrivals(emulator, broken)) == 1


async def test_after_content_a_failure_is_an_error_event_and_counted(
    emulator: EmulatorServer, proxy_factory: Factory
) -> None:
    broken, good = unique("m") + "-fault-midstream", unique("g")
    proxy = proxy_factory(
        {
            "model_list": [
                openai_model("a", broken, emulator.openai_base),
                openai_model("b", good, emulator.openai_base),
            ],
            "router_settings": {"fallbacks": [{"a": ["b"]}], "num_retries": 2},
        }
    )
    async with aiohttp.ClientSession() as session:
        body = {"model": "a", "messages": MESSAGES, "stream": True}
        async with session.post(proxy.url + "/v1/chat/completions", json=body) as response:
            assert response.status == 200
            text = (await response.read()).decode()
        async with session.get(proxy.url + "/metrics") as response:
            metrics = (await response.read()).decode()
    events = [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]
    chunks = [orjson.loads(event) for event in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks).startswith("Echo")  # sent first
    assert '"error"' in events[-1] and "[DONE]" not in events
    assert len(await arrivals(emulator, good)) == 0  # too late to fail over
    errors = [
        line
        for line in metrics.splitlines()
        if line.startswith("llmplex_proxy_upstream_errors_total") and 'model="a"' in line
    ]
    assert errors and float(errors[0].rsplit(" ", 1)[1]) >= 1


def test_queue_and_failover_settings_are_read_from_the_config() -> None:
    from llmplex.exceptions import ConfigError
    from llmplex.proxy import ProxyConfig

    base = "http://127.0.0.1:9/v1"
    text = f"""
model_list:
  - model_name: a
    litellm_params: {{model: openai/x, api_base: "{base}", api_key: k, max_parallel_requests: 3, stream_timeout: 2}}
  - model_name: b
    litellm_params: {{model: openai/y, api_base: "{base}", api_key: k}}
router_settings:
  queue_timeout: 4.5
  queue_max_length: 7
  default_priority: 3
  stream_timeout: 1.5
  context_window_fallbacks: [{{a: [b]}}]
litellm_settings:
  content_policy_fallbacks: [{{a: [b]}}]
"""
    config = ProxyConfig.from_yaml(text, environ={})
    router = config.router
    assert (router.queue_timeout, router.queue_max_length, router.default_priority) == (4.5, 7, 3)
    assert router.stream_first_token_timeout == 1.5
    assert router.context_window_fallbacks == {"a": ("b",)} and router.content_policy_fallbacks == {"a": ("b",)}
    first = config.deployments[0]
    assert first.max_parallel_requests == 3 and first.params["stream_first_token_timeout"] == 2.0
    assert "stream_timeout" not in first.params and "max_parallel_requests" not in first.params
    assert not any("max_parallel_requests" in w or "stream_timeout" in w for w in config.warnings)
    with pytest.raises(ConfigError, match=r"router_settings\.queue_timeout"):
        ProxyConfig.from_yaml(text.replace("queue_timeout: 4.5", "queue_timeout: -1"), environ={})
    with pytest.raises(ConfigError, match=r"max_parallel_requests"):
        ProxyConfig.from_yaml(text.replace("max_parallel_requests: 3", "max_parallel_requests: 0"), environ={})
    with pytest.raises(ConfigError, match=r"context_window_fallbacks"):
        ProxyConfig.from_yaml(
            text.replace("context_window_fallbacks: [{a: [b]}]", "context_window_fallbacks: [{a: [nope]}]"), environ={}
        )
