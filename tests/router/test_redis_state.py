"""The Redis-backed router state against a real Redis on 127.0.0.1: config, atomic limits, shared
cooldowns and statistics, fail-open / fail-closed when Redis is down or hangs.

Needs Redis on 127.0.0.1:6379 (``REDIS_TEST_URL`` overrides); skipped when it is not reachable unless
``LLMPLEX_REQUIRE_REDIS`` is set (CI), where the tests fail instead. Every test uses its own key prefix
and deletes its keys afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis as sync_redis

from llmplex.exceptions import ConfigError, ServiceUnavailableError
from llmplex.proxy import ProxyConfig
from llmplex.router.state import LocalState, make_state
from llmplex.router.state.shared import RedisState
from llmplex.router.strategies import choose

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")


def redis_available(url: str = REDIS_URL) -> bool:
    try:
        client = sync_redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except sync_redis.RedisError:
        return False


def require_redis() -> None:
    if not redis_available():
        if os.environ.get("LLMPLEX_REQUIRE_REDIS"):
            pytest.fail(f"Redis is not reachable at {REDIS_URL} and LLMPLEX_REQUIRE_REDIS is set")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")


def delete_prefix(url: str, prefix: str) -> None:
    client = sync_redis.Redis.from_url(url, socket_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A unique key prefix on the shared test Redis; its keys are deleted afterwards."""
    require_redis()
    prefix = f"llmplex-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    delete_prefix(REDIS_URL, prefix)


def server_ms(url: str = REDIS_URL) -> int:
    client = sync_redis.Redis.from_url(url, socket_timeout=2)
    try:
        seconds, micros = client.time()
    finally:
        client.close()
    return int(seconds) * 1000 + int(micros) // 1000


async def at_window_start(window_s: float, url: str = REDIS_URL) -> None:
    """Sleep until just after a window boundary on the Redis clock, so a short burst fits in one window."""
    window_ms = round(window_s * 1000)
    await asyncio.sleep((window_ms - server_ms(url) % window_ms) / 1000 + 0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def config(prefix: str | None, *, redis: dict[str, Any] | None = None, **own: Any) -> ProxyConfig:
    router: dict[str, Any] = {"allowed_fails": 0, "cooldown_time": 30}
    if redis is None:
        router["redis_url"] = REDIS_URL
    else:
        router.update(redis)
    return ProxyConfig.from_dict(
        {
            "model_list": [
                {
                    "model_name": "g",
                    "litellm_params": {"model": "openai/a", "api_key": "k", "rpm": 5},
                    "model_info": {"id": "a"},
                },
                {"model_name": "g", "litellm_params": {"model": "openai/b", "api_key": "k"}, "model_info": {"id": "b"}},
            ],
            "router_settings": router,
            "llmplex_settings": {"redis_key_prefix": prefix or "unused", "rate_limit_window_seconds": 4, **own},
        },
        environ={},
    )


@pytest.fixture
async def pair(redis_prefix: str) -> AsyncIterator[tuple[RedisState, RedisState]]:
    """Two states on one prefix: two workers or replicas."""
    cfg = config(redis_prefix, redis_timeout_seconds=1.0)
    states = (make_state(cfg.deployments, cfg.router, cfg.redis), make_state(cfg.deployments, cfg.router, cfg.redis))
    assert isinstance(states[0], RedisState) and isinstance(states[1], RedisState)
    for state in states:
        await state.start()
    yield states[0], states[1]
    for state in states:
        await state.close()


# config


def test_litellm_redis_settings_with_env_references() -> None:
    cfg = ProxyConfig.from_dict(
        {
            "model_list": [{"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "k"}}],
            "router_settings": {
                "redis_host": "os.environ/MY_REDIS_HOST",
                "redis_port": "os.environ/MY_REDIS_PORT",
                "redis_password": "os.environ/MY_REDIS_PASSWORD",
            },
            "llmplex_settings": {"redis_failure_mode": "closed", "redis_key_prefix": "p"},
        },
        environ={"MY_REDIS_HOST": "10.0.0.5", "MY_REDIS_PORT": "6380", "MY_REDIS_PASSWORD": "hunter2"},
    )
    redis = cfg.redis
    assert redis is not None
    assert (redis.host, redis.port, redis.password, redis.url) == ("10.0.0.5", 6380, "hunter2", None)
    assert (redis.failure_mode, redis.key_prefix, redis.timeout) == ("closed", "p", 0.1)
    assert not cfg.warnings
    assert "hunter2" not in repr(redis) + repr(cfg)


def test_redis_from_environment_variables() -> None:
    entry = {"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/m"}}]}
    env = {"REDIS_HOST": "cache", "REDIS_PORT": "7000", "REDIS_PASSWORD": "pw"}
    redis = ProxyConfig.from_dict(entry, environ=env).redis
    assert redis is not None and (redis.host, redis.port, redis.password) == ("cache", 7000, "pw")
    redis = ProxyConfig.from_dict(entry, environ={"REDIS_URL": "redis://:pw@cache:7001/2"}).redis
    assert redis is not None and redis.url == "redis://:pw@cache:7001/2"
    assert ProxyConfig.from_dict(entry, environ={}).redis is None
    with pytest.raises(ConfigError, match="REDIS_PORT"):
        ProxyConfig.from_dict(entry, environ={"REDIS_HOST": "cache", "REDIS_PORT": "six"})


def test_bad_failure_mode_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"llmplex_settings\.redis_failure_mode"):
        config(None, redis_failure_mode="sometimes")


def test_without_redis_the_state_is_local() -> None:
    cfg = config(None, redis={})
    assert cfg.redis is None and cfg.router.rate_limit_window == 4.0
    assert isinstance(make_state(cfg.deployments, cfg.router, cfg.redis), LocalState)


# shared behaviour


async def test_rpm_window_is_atomic_across_instances(pair: tuple[RedisState, RedisState]) -> None:
    a, b = pair
    limited = a.deployments[0]  # rpm: 5
    await at_window_start(4)
    results = await asyncio.gather(*(s.admit(limited) for s in (a, b) * 15))
    admitted = [r for r in results if r == 0]
    assert len(admitted) == 5  # 30 concurrent check-and-increments from two instances, 5 admitted
    assert all(0 < r <= 4 for r in results if r != 0)  # the rest wait for the window's end
    assert a.redis_errors == b.redis_errors == 0
    await b.sync_once()
    assert b.blocked_for(limited) > 0  # known full without another round trip


async def test_cooldown_and_statistics_are_shared(pair: tuple[RedisState, RedisState]) -> None:
    a, b = pair
    first, second = a.deployments
    await a.record_failure(first, may_cool_down=True)  # allowed_fails: 0
    assert 29 < a.blocked_for(first) <= 30
    assert b.blocked_for(first) == 0
    await b.sync_once()
    assert 29 < b.blocked_for(first) <= 30  # honoured by the other instance after one sync
    assert b.blocked_for(second) == 0

    for _ in range(3):
        a.begin(second)
    a.record_success(second, 120.0, 40)
    await a.sync_once()
    await b.sync_once()
    assert b.in_flight(second) == 3 and b.latency_ms(second) == pytest.approx(120.0)
    assert b.tokens(second) == 40
    await a.close()  # leaves no in-flight count behind
    await b.sync_once()
    assert b.in_flight(second) == 0


async def test_only_a_deployment_with_limits_costs_a_round_trip(pair: tuple[RedisState, RedisState]) -> None:
    a, _ = pair
    unlimited = a.deployments[1]
    client = sync_redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        before = int(client.info("stats")["total_commands_processed"])
        for _ in range(50):
            assert await a.admit(unlimited) == 0
        after = int(client.info("stats")["total_commands_processed"])
    finally:
        client.close()
    assert after - before < 25  # background syncs and the INFO calls only, not 50 admits


async def test_unreachable_redis_fails_open_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    cfg = config(None, redis={"redis_host": "127.0.0.1", "redis_port": free_port()})
    state = make_state(cfg.deployments, cfg.router, cfg.redis)
    assert isinstance(state, RedisState)
    with caplog.at_level(logging.WARNING, logger="llmplex.router.state"):
        await state.start()
        limited = state.deployments[0]
        results = [await state.admit(limited) for _ in range(7)]
        await state.record_failure(state.deployments[1], may_cool_down=True)
        await state.close()
    assert results[:5] == [0] * 5 and all(r > 0 for r in results[5:])  # the rpm limit still holds, per process
    assert state.blocked_for(state.deployments[1]) > 0  # the cooldown too
    assert not state.healthy and state.redis_errors >= 1 and state.local_fallbacks == 8
    warnings = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(warnings) == 1


async def test_unreachable_redis_fails_closed_when_configured() -> None:
    cfg = config(None, redis={"redis_host": "127.0.0.1", "redis_port": free_port()}, redis_failure_mode="closed")
    state = make_state(cfg.deployments, cfg.router, cfg.redis)
    await state.start()
    try:
        with pytest.raises(ServiceUnavailableError, match="closed"):
            await state.admit(cfg.deployments[0])
        assert await state.admit(cfg.deployments[1]) == 0  # no limit to check: nothing to refuse
    finally:
        await state.close()


async def test_a_hanging_redis_never_stalls_a_request() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cfg = config(None, redis={"redis_host": "127.0.0.1", "redis_port": port})
    state = make_state(cfg.deployments, cfg.router, cfg.redis)
    try:
        await state.start()
        started = time.monotonic()
        assert await state.admit(cfg.deployments[0]) == 0
        assert time.monotonic() - started < 0.05  # known down: decided locally without waiting again
        assert state.redis_errors >= 1 and accepted
    finally:
        await state.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


# hostile or stale values in Redis (issue 17 #6): anyone with access to Redis can write these keys


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e400", "-5", "fast"])
async def test_non_finite_latency_in_redis_is_ignored(pair: tuple[RedisState, RedisState], bad: str) -> None:
    a, b = pair
    first, second = a.deployments
    client = sync_redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.set(f"{a.redis_settings.key_prefix}:{first.model_id}:latency", bad)
        b.record_success(second, 80.0, 1)
        await b.sync_once()
        assert b.latency_ms(first) is None  # not NaN/inf/negative: the local (unknown) value applies
        assert b.latency_samples(first) == []
        rng = random.Random(1)
        picks = {choose("latency-based-routing", a.deployments, b, rng).model_id for _ in range(20)}
        assert picks <= {"a", "b"} and picks  # always a pick; before, NaN left nothing to pick from
        # this instance's samples replace the broken shared value
        b.record_success(first, 50.0, 1)
        await b.sync_once()
        assert b.latency_ms(first) == pytest.approx(50.0)
        assert float(client.get(f"{a.redis_settings.key_prefix}:{first.model_id}:latency") or "nan") == 50.0
        assert a.redis_errors == b.redis_errors == 0
    finally:
        client.close()


async def test_a_shared_latency_whose_key_disappears_is_dropped(pair: tuple[RedisState, RedisState]) -> None:
    a, b = pair
    second = a.deployments[1]
    a.record_success(second, 120.0, 1)
    await a.sync_once()
    await b.sync_once()
    assert b.latency_ms(second) == pytest.approx(120.0)
    client = sync_redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.delete(f"{a.redis_settings.key_prefix}:{second.model_id}:latency")
    finally:
        client.close()
    await b.sync_once()
    assert b.latency_ms(second) is None  # not the stale 120 ms for as long as the process lives


async def test_broken_counters_in_redis_neither_break_nor_bypass_limits(
    pair: tuple[RedisState, RedisState],
) -> None:
    a, b = pair
    limited = a.deployments[0]  # rpm: 5, window 4 s
    await at_window_start(4)
    window = server_ms() // 4000
    client = sync_redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        base = f"{a.redis_settings.key_prefix}:{limited.model_id}"
        client.set(f"{base}:rpm:{window}", "nan")
        client.set(f"{base}:tpm:{window}", "inf")
        client.set(f"{base}:cooldown", "1", px=10**9)  # a cooldown far longer than the configured 30 s
        results = await asyncio.gather(*(a.admit(limited) for _ in range(8)))
        assert sum(1 for r in results if r == 0) == 5  # counted from zero again, the limit holds
        await b.sync_once()
        assert a.redis_errors == b.redis_errors == 0 and b.healthy
        assert 0 < b.blocked_for(limited) <= 30  # the cooldown is capped at the configured one
    finally:
        client.close()


# Redis URLs whose password holds URL delimiters (issue 17 #14)

HOSTILE_PASSWORD = "pa#ss/w@rd?x:y%25z"  # as written in the URL: %25 is a literal '%'


async def test_a_password_with_url_delimiters_connects(redis_prefix: str) -> None:
    """A real Redis user whose password holds '#', '/', '@', '?' and ':', written raw in redis_url."""
    user = f"{redis_prefix}-user"
    admin = sync_redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        admin.acl_setuser(
            user, enabled=True, passwords=["+pa#ss/w@rd?x:y%z"], keys=[f"{redis_prefix}:*"], commands=["+@all"]
        )
        host_port = REDIS_URL.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
        url = f"redis://{user}:{HOSTILE_PASSWORD}@{host_port}/0"
        cfg = config(redis_prefix, redis={"redis_url": url}, redis_timeout_seconds=1.0)
        state = make_state(cfg.deployments, cfg.router, cfg.redis)
        assert isinstance(state, RedisState)
        await state.start()
        try:
            assert state.healthy and state.redis_errors == 0
            assert await state.sync_once()
        finally:
            await state.close()
    finally:
        admin.acl_deluser(user)
        admin.close()


@pytest.mark.parametrize("url", ["redis://:s3cret-pw@127.0.0.1:notaport/0", "http://:s3cret-pw@127.0.0.1:6379/0"])
def test_a_broken_redis_url_names_the_setting_not_the_secret(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(None, redis={"redis_url": url})
    message = str(caught.value)
    assert "router_settings.redis_url" in message and "s3cret" not in message and "s3" not in message
    entry = {"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/m"}}]}
    with pytest.raises(ConfigError) as caught:
        ProxyConfig.from_dict(entry, environ={"REDIS_URL": url})
    assert "REDIS_URL" in str(caught.value) and "s3" not in str(caught.value)
