"""Two real proxy replicas (``llmplex`` CLI subprocesses) on one key database: a key change made on one
reaches the other within 1 s (Redis pub/sub, or the epoch poll without Redis), and a key's rpm_limit
holds across both (Redis windows) while the requests over it wait in line."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.fixtures_emulator import EmulatorServer
from tests.proxy.keys_support import call, chat, keys_config
from tests.proxy.test_queue import arrivals
from tests.proxy.test_scale_out import ProxyProcess
from tests.router.test_redis_state import REDIS_URL, delete_prefix, require_redis

WINDOW = 4.0  # seconds: the rpm window, short for the test


@pytest.fixture(params=["postgresql+redis", "sqlite"])
def replicas(
    request: pytest.FixtureRequest, tmp_path: Path, emulator: EmulatorServer, pg_databases: Callable[[], str]
) -> Iterator[tuple[list[str], bool]]:
    """Two proxies on one database; with Redis for the PostgreSQL case. Yields (urls, shares Redis)."""
    with_redis = request.param.endswith("redis")
    database = pg_databases() if with_redis else f"sqlite:///{tmp_path / 'keys.db'}"
    prefix = f"llmplex-test-keys-{uuid.uuid4().hex[:8]}"
    own: dict[str, Any] = {"rate_limit_window_seconds": WINDOW, "redis_key_prefix": prefix, "redis_timeout_seconds": 1}
    config = keys_config(emulator, database, llmplex_settings=own)
    if with_redis:
        require_redis()
        config["router_settings"] = {"redis_url": REDIS_URL}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    procs = [ProxyProcess(path, tmp_path / f"replica{i}.log") for i in range(2)]
    try:
        for proc in procs:
            proc.wait_serving()
        yield [p.url for p in procs], with_redis
    finally:
        for proc in procs:
            proc.stop()
        if with_redis:
            delete_prefix(REDIS_URL, prefix)


async def _until(check: Callable[[], Any], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await check():
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    raise AssertionError(f"not seen within {timeout} s")


async def test_a_change_on_one_replica_reaches_the_other_within_a_second(replicas: tuple[list[str], bool]) -> None:
    (a, b), _ = replicas
    async with aiohttp.ClientSession() as http:
        status, made, _ = await call(http, a, "/key/generate", {"models": ["cheap"]})
        assert status == 200
        key = made["key"]

        async def works_on_b() -> bool:
            return (await chat(http, b, key))[0] == 200

        seen = await _until(works_on_b, 3.0)
        assert seen <= 1.0, f"the new key worked on the other replica after {seen:.2f} s"
        assert (await call(http, a, "/key/block", {"key": key}))[0] == 200

        async def refused_on_b() -> bool:
            return (await chat(http, b, key))[0] == 401

        seen = await _until(refused_on_b, 3.0)
        assert seen <= 1.0, f"the block reached the other replica after {seen:.2f} s"


async def test_rpm_limit_holds_across_replicas_and_the_rest_wait(
    replicas: tuple[list[str], bool], emulator: EmulatorServer
) -> None:
    urls, shared = replicas
    if not shared:
        pytest.skip("per-process windows without Redis: each replica counts its own requests")
    rpm = 10
    async with aiohttp.ClientSession() as http:
        _, made, _ = await call(http, urls[0], "/key/generate", {"rpm_limit": rpm})
        key = made["key"]
        await _until(lambda: _ok(http, urls[1], key), 3.0)  # known on both (this request counts: 1 of rpm)
        await asyncio.sleep(WINDOW - time.time() % WINDOW + 0.05)  # a fresh window for the burst
        started = time.time()
        # 2.5 windows' worth: the first rpm at once, the rest wait in their replica's line (queue_timeout 10 s)
        results = await asyncio.gather(*(chat(http, urls[i % 2], key) for i in range(5 * rpm // 2)))
        elapsed = time.time() - started
    assert [r[0] for r in results] == [200] * len(results)
    times = [t for t in await arrivals(emulator, "gpt-4o-mini", clock=1) if t >= started]
    windows = Counter(int(t // WINDOW) for t in times)
    assert len(times) == len(results) and max(windows.values()) <= rpm, windows  # exact across both replicas
    assert len(windows) == 3 and elapsed >= 2 * WINDOW - 0.1


async def test_a_parallel_slot_freed_on_one_replica_wakes_a_waiter_on_the_other(
    replicas: tuple[list[str], bool], emulator: EmulatorServer
) -> None:
    urls, shared = replicas
    if not shared:
        pytest.skip("per-process in-flight counts without Redis")
    async with aiohttp.ClientSession() as http:
        _, made, _ = await call(http, urls[0], "/key/generate", {"max_parallel_requests": 1})
        key = made["key"]
        await _until(lambda: _ok(http, urls[1], key), 3.0)
        for holder, waiter in ((urls[0], urls[1]), (urls[1], urls[0])):
            started = time.time()
            first = asyncio.create_task(chat(http, holder, key, "slow"))  # holds the slot for 300 ms
            await asyncio.sleep(0.05)
            second = time.monotonic()
            status, _, _ = await chat(http, waiter, key, "slow")  # waits on the other replica, then 300 ms
            waited = time.monotonic() - second
            assert status == 200 and (await first)[0] == 200
            times = [t for t in await arrivals(emulator, "gpt-4o-mini-delay-300", clock=1) if t >= started]
            assert len(times) == 2 and times[1] - times[0] >= 0.28  # one at a time
            # woken by the release's Redis message (~0.25 s), not the 1 s re-check of a lost message
            assert waited < 0.9, waited


async def _ok(http: aiohttp.ClientSession, url: str, key: str) -> bool:
    return (await chat(http, url, key))[0] == 200
