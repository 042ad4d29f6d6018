"""Several proxy processes acting as one through Redis: real ``llmplex`` CLI subprocesses (uvicorn),
the emulator upstream, a real Redis.

The shared Redis on 6379 is used with a unique key prefix per module; the kill-and-restart test runs
its own ``redis-server`` on a free port (never the machine's shared one).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis as sync_redis
import yaml

from tests.fixtures_emulator import EmulatorServer
from tests.router.test_redis_state import REDIS_URL, at_window_start, delete_prefix, free_port, require_redis, server_ms

WINDOW = 4.0  # seconds: the rpm window, short for the test
START_TIMEOUT = 20.0
MESSAGES = [{"role": "user", "content": "scale"}]


class ProxyProcess:
    """``python -m llmplex --config FILE`` on a free port; stderr goes to a file we can read."""

    def __init__(self, config_path: Path, log_path: Path, workers: int = 1) -> None:
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
        args = [sys.executable, "-m", "llmplex", "--config", str(config_path), "--host", "127.0.0.1", "--port", "0"]
        args += ["--num_workers", str(workers)]
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, env=env)
        self.url = ""

    def wait_serving(self) -> ProxyProcess:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            for line in self.log().splitlines():
                if " on http://127.0.0.1:" in line and "serving" in line:
                    self.url = "http://127.0.0.1:" + line.rsplit("http://127.0.0.1:", 1)[1].split()[0]
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"proxy did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def write_config(path: Path, emulator: EmulatorServer, prefix: str, redis_url: str | None) -> Path:
    def entry(name: str, model: str, **params: Any) -> dict[str, Any]:
        litellm = {"model": f"openai/{model}", "api_base": emulator.openai_base, "api_key": "k", **params}
        return {"model_name": name, "litellm_params": litellm, "model_info": {"id": model}}

    router: dict[str, Any] = {"allowed_fails": 0, "cooldown_time": 30, "fallbacks": [{"spill": ["overflow"]}]}
    if redis_url is not None:
        router["redis_url"] = redis_url
    data = {
        "model_list": [
            entry("limited", "so-limited", rpm=6),
            entry("spill", "so-spill", rpm=3),
            entry("overflow", "so-overflow"),
            entry("pair", "so-bad-status-500"),
            entry("pair", "so-good"),
            entry("roomy", "so-roomy", rpm=100000),
        ],
        "router_settings": router,
        # a generous Redis timeout: this test machine is shared and busy, and a timed-out call
        # would (correctly) fall back to per-process limits
        "llmplex_settings": {
            "redis_key_prefix": prefix,
            "rate_limit_window_seconds": WINDOW,
            "redis_timeout_seconds": 1,
        },
    }
    path.write_text(yaml.safe_dump(data))
    return path


def instances(url: str, prefix: str, model_id: str = "so-limited") -> int:
    """How many proxy processes have published their state for a deployment."""
    client = sync_redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return int(client.hlen(f"{prefix}:{model_id}:inflight"))
    except sync_redis.RedisError:
        return 0
    finally:
        client.close()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


async def post(http: aiohttp.ClientSession, url: str, model: str) -> tuple[int, Any, Any]:
    async with http.post(url + "/v1/chat/completions", json={"model": model, "messages": MESSAGES}) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


async def burst(urls: list[str], model: str, count: int) -> list[tuple[int, Any, Any]]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        return await asyncio.gather(*(post(http, urls[i % len(urls)], model) for i in range(count)))


async def limited_burst(
    urls: list[str], emulator: EmulatorServer, rpm: int, redis_url: str = REDIS_URL
) -> tuple[int, list[tuple[int, Any, Any]]]:
    """3 x rpm requests spread over ``urls`` right after a window starts -> (upstream calls, responses)."""
    await at_window_start(WINDOW, redis_url)
    window = server_ms(redis_url) // round(WINDOW * 1000)
    before = (await emulator.astats())["received"]
    results = await burst(urls, "limited", 3 * rpm)
    received = (await emulator.astats())["received"] - before
    windows = server_ms(redis_url) // round(WINDOW * 1000) - window + 1
    assert received <= rpm * windows, f"{received} upstream calls for rpm {rpm} in {windows} window(s)"
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] != 200]
    assert len(ok) == received and ok
    for status, body, headers in refused:
        assert status == 429 and "limited" in body["error"]["message"]
        assert 1 <= int(headers["retry-after"]) <= WINDOW
    return received, results


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    require_redis()
    value = f"llmplex-test-{uuid.uuid4().hex[:12]}"
    yield value
    delete_prefix(REDIS_URL, value)


@pytest.fixture(scope="module")
def replicas(
    emulator: EmulatorServer, prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ProxyProcess]]:
    """Two replicas sharing the machine's Redis."""
    folder = tmp_path_factory.mktemp("replicas")
    path = write_config(folder / "config.yaml", emulator, prefix, REDIS_URL)
    procs = [ProxyProcess(path, folder / f"proxy-{i}.log") for i in range(2)]
    try:
        for proc in procs:
            proc.wait_serving()
        wait_until(lambda: instances(REDIS_URL, prefix) == 2, 10, "both replicas to share state")
        yield procs
    finally:
        for proc in procs:
            proc.stop()


async def test_rpm_is_shared_by_two_replicas(replicas: list[ProxyProcess], emulator: EmulatorServer) -> None:
    received, _ = await limited_burst([p.url for p in replicas], emulator, rpm=6)
    assert received >= 1


async def test_past_rpm_the_fallback_takes_over(replicas: list[ProxyProcess]) -> None:
    await at_window_start(WINDOW)
    results = await burst([p.url for p in replicas], "spill", 9)
    assert all(status == 200 for status, _, _ in results)
    served = [body["model"] for _, body, _ in results]
    assert 1 <= served.count("so-spill") <= 3 and served.count("so-overflow") == 9 - served.count("so-spill")


async def test_a_cooldown_in_one_replica_is_honoured_by_the_other(replicas: list[ProxyProcess]) -> None:
    a, b = replicas
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for _ in range(40):  # until the random choice hits the failing deployment (p = 1/2 each)
            status, _, _ = await post(http, a.url, "pair")
            if status == 500:
                failed_at = time.monotonic()
                break
            assert status == 200
        else:
            pytest.fail("the failing deployment was never chosen")
        await asyncio.sleep(max(0.0, failed_at + 1.0 - time.monotonic()))
        for _ in range(12):  # b never saw a failure itself: it knows from Redis
            status, body, _ = await post(http, b.url, "pair")
            assert status == 200 and body["model"] == "so-good"


async def test_redis_killed_and_restarted(emulator: EmulatorServer, tmp_path: Path) -> None:
    server_bin = shutil.which("redis-server")
    if server_bin is None:
        if os.environ.get("LLMPLEX_REQUIRE_REDIS"):
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    args = [server_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    args += ["--daemonize", "no"]

    def start_redis() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
        wait_until(lambda: _pings(url), 10, "redis-server to start")
        return proc

    redis_proc = start_redis()
    prefix = f"llmplex-test-{uuid.uuid4().hex[:12]}"
    path = write_config(tmp_path / "config.yaml", emulator, prefix, url)
    procs = [ProxyProcess(path, tmp_path / f"proxy-{i}.log") for i in range(2)]
    try:
        for proc in procs:
            proc.wait_serving()
        wait_until(lambda: instances(url, prefix) == 2, 10, "both replicas to share state")
        urls = [p.url for p in procs]
        assert all(status == 200 for status, _, _ in await burst(urls, "roomy", 4))

        redis_proc.kill()
        redis_proc.wait(timeout=5)
        started = time.monotonic()
        for _ in range(5):  # Redis is gone: keep serving on local state, without stalling
            assert all(status == 200 for status, _, _ in await burst(urls, "roomy", 4))
        assert time.monotonic() - started < 5
        assert all("Redis unavailable" in p.log() for p in procs)

        redis_proc = start_redis()
        wait_until(lambda: instances(url, prefix) == 2, 5, "both replicas to reconnect")
        await limited_burst(urls, emulator, rpm=6, redis_url=url)  # sharing resumed
        assert all("Redis is reachable again" in p.log() for p in procs)
    finally:
        for proc in procs:
            proc.stop()
        redis_proc.kill()
        redis_proc.wait(timeout=5)


async def test_two_workers_share_limits_through_redis(emulator: EmulatorServer, tmp_path: Path, prefix: str) -> None:
    worker_prefix = prefix + "-workers"
    path = write_config(tmp_path / "config.yaml", emulator, worker_prefix, REDIS_URL)
    proc = ProxyProcess(path, tmp_path / "proxy.log", workers=2)
    try:
        proc.wait_serving()
        wait_until(lambda: instances(REDIS_URL, worker_prefix) == 2, 15, "both workers to share state")
        await limited_burst([proc.url], emulator, rpm=6)
        assert "per worker" not in proc.log()
    finally:
        proc.stop()
        delete_prefix(REDIS_URL, worker_prefix)


def test_workers_without_redis_warn_that_limits_are_per_worker(emulator: EmulatorServer, tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.yaml", emulator, "unused", None)
    proc = ProxyProcess(path, tmp_path / "proxy.log", workers=2)
    try:
        proc.wait_serving()
        log = proc.log()
        assert log.count("per worker") == 1 and "2x each deployment's rpm/tpm" in log
    finally:
        proc.stop()


def _pings(url: str) -> bool:
    client = sync_redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except sync_redis.RedisError:
        return False
    finally:
        client.close()
