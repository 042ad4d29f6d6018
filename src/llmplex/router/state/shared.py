"""``RedisState``: the router state shared by every worker and replica through Redis.

Hot path: a deployment with ``rpm``/``tpm`` needs its window checked and incremented atomically in
Redis. Admits are batched: while one EVALSHA is in flight, the requests arriving meanwhile queue up
and go together in the next, so it is at most one round trip per request and far fewer under load.
A deployment without limits costs none. Everything else
(in-flight counts, token usage, latency samples, cooldowns) is batched: a background task
publishes this process's numbers and reads everyone's every ``SYNC_INTERVAL`` seconds, one EVALSHA
per round, so a cooldown triggered in one replica is honoured by the others within that interval.
Failures are the exception: each one is counted in Redis at once, so ``allowed_fails`` is shared.

Redis down or slow (short socket timeouts): requests are decided on the local state, a warning is
logged at most every ``WARN_EVERY`` seconds, ``redis_errors``/``local_fallbacks`` count it, and
the background task keeps trying, which is also how the state reconnects. With
``redis_failure_mode: closed`` a request that needs a limit checked is refused (503) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from llmplex._latency import WINDOW
from llmplex.exceptions import ServiceUnavailableError
from llmplex.router.deployments import Deployment
from llmplex.router.settings import RedisSettings, RouterSettings, redis_url
from llmplex.router.state import lua
from llmplex.router.state.local import FAIL_WINDOW, RouterState

__all__ = ["SYNC_INTERVAL", "RedisState"]

logger = logging.getLogger("llmplex.router.state")

SYNC_INTERVAL = 0.2  # seconds between publishing/reading the shared statistics
WARN_EVERY = 30.0  # seconds between "Redis is still unavailable" warnings
_STALE_MS = 3000  # an instance that has not synced for this long is gone (its in-flight count is dropped)
_MAX_CONNECTIONS = 64
_MAX_BATCH = 256  # admits per EVALSHA: keeps one script run short (Redis is single-threaded)
_FAILURES = (RedisError, OSError, asyncio.TimeoutError)
_CLOSE_TIMEOUT = 2.0  # seconds close() may take at most


class _Shared:
    """What the last sync said about one deployment (plus what this process has not published yet)."""

    __slots__ = (
        "elsewhere",
        "fresh",
        "latency_ms",
        "limited_until",
        "pending_tokens",
        "recent",
        "recent_text",
        "sample_sum",
        "samples",
        "tokens",
    )

    def __init__(self) -> None:
        self.elsewhere = 0  # requests in flight in other processes
        self.tokens = 0  # tokens in the current window, all processes
        self.latency_ms: float | None = None
        self.limited_until = 0.0  # rpm/tpm window full until then (local clock)
        self.pending_tokens = 0
        self.sample_sum = 0.0
        self.samples = 0
        self.fresh: deque[float] = deque(maxlen=WINDOW)  # whole-completion latencies not yet published
        self.recent: list[float] = []  # the shared most recent latencies, all processes
        self.recent_text = b""  # as last received: parsed again only when it changed


class RedisState(RouterState):
    shared = True

    def __init__(
        self,
        deployments: Sequence[Deployment],
        settings: RouterSettings,
        redis: RedisSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(deployments, settings, clock=clock)
        self.redis_settings = redis
        self.instance = os.urandom(8).hex()  # one per worker process / app
        self.deployments = tuple(deployments)
        self._shared = {id(d): _Shared() for d in deployments}
        self._by_id = {id(d): d for d in deployments}
        # max_parallel_requests: calls this process counts in Redis' <base>:par, and decrements not yet sent
        self._par_held: dict[int, int] = {id(d): 0 for d in deployments if d.max_parallel_requests is not None}
        self._releases: dict[int, int] = {}
        self._releaser: asyncio.Task[None] | None = None
        self._window_ms = max(1, round(self.window_length * 1000))
        self._client: aioredis.Redis | None = None
        self._pool: aioredis.BlockingConnectionPool | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._queue: list[tuple[Deployment, asyncio.Future[float | None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._healthy = False
        self._last_warning = -WARN_EVERY
        self._admit: Any = None
        self._fail: Any = None
        self._sync: Any = None

    @property
    def healthy(self) -> bool:
        """True while the last call to Redis succeeded (the state is shared right now)."""
        return self._healthy

    def alias(self, made: Deployment, template: Deployment) -> None:
        super().alias(made, template)
        self._shared[id(made)] = self._shared[id(template)]  # same model_id, so the same Redis keys too

    def unalias(self, ident: int) -> None:
        super().unalias(ident)
        self._shared.pop(ident, None)

    def _base(self, deployment: Deployment) -> str:
        return f"{self.redis_settings.key_prefix}:{deployment.model_id}"

    async def start(self) -> None:
        settings = self.redis_settings
        options: dict[str, Any] = {
            "socket_timeout": settings.timeout,
            "socket_connect_timeout": settings.timeout,
            "retry": Retry(NoBackoff(), 0),  # a failed call falls back to local state; never wait on retries
            "max_connections": _MAX_CONNECTIONS,
            "timeout": settings.timeout,  # waiting for a free pooled connection
        }
        if settings.url:
            pool = aioredis.BlockingConnectionPool.from_url(redis_url(settings.url), **options)
        else:
            pool = aioredis.BlockingConnectionPool(
                host=settings.host, port=settings.port, password=settings.password, **options
            )
        self._pool = pool
        self._client = aioredis.Redis(connection_pool=pool)
        self._admit = self._client.register_script(lua.ADMIT)
        self._fail = self._client.register_script(lua.FAIL)
        self._sync = self._client.register_script(lua.SYNC)
        await self.sync_once()
        self._sync_task = asyncio.create_task(self._sync_forever(), name="llmplex-redis-sync")

    async def close(self) -> None:
        # bounded: a Redis call stuck in the client library must never hang a shutdown
        tasks = [task for task in (self._sync_task, self._flusher, self._releaser) if task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_CLOSE_TIMEOUT)
        self._sync_task = None
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(*_FAILURES, TimeoutError):
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                if self._healthy:  # leave no in-flight count behind; best effort
                    async with client.pipeline(transaction=False) as pipe:
                        for deployment in self.deployments:
                            pipe.hdel(f"{self._base(deployment)}:inflight", self.instance)
                            if deployment.max_parallel_requests is not None:
                                pipe.hdel(f"{self._base(deployment)}:par", self.instance)
                        pipe.delete(f"{self.redis_settings.key_prefix}:alive:{self.instance}")
                        await pipe.execute()
                await client.aclose()
                if self._pool is not None:
                    await self._pool.aclose()

    # hot path

    def blocked_for(self, deployment: Deployment) -> float:
        if not self._healthy:
            return super().blocked_for(deployment)
        parallel = deployment.max_parallel_requests
        if parallel is not None and self.in_flight(deployment) >= parallel:
            return math.inf  # as far as the last sync knows: re-checked after the next one
        now = self.clock()
        until = max(self.stats(deployment).cooldown_until, self._shared[id(deployment)].limited_until)
        return until - now if until > now else 0.0

    def admit_now(self, deployment: Deployment) -> float | None:
        if deployment.rpm is None and deployment.tpm is None and deployment.max_parallel_requests is None:
            return self._admit_locally(deployment)
        return None  # the shared window decides, in admit()

    async def admit(self, deployment: Deployment) -> float:
        if deployment.rpm is None and deployment.tpm is None and deployment.max_parallel_requests is None:
            return self._admit_locally(deployment)
        if self._healthy and self._client is not None:
            future: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
            self._queue.append((deployment, future))
            if self._flusher is None:
                self._flusher = asyncio.create_task(self._flush_admits(), name="llmplex-redis-admit")
            verdict = await future
            if verdict is not None:
                return verdict
        return self._fallback(deployment)

    async def _flush_admits(self) -> None:
        """Send queued admits, one EVALSHA per batch; requests arriving meanwhile form the next batch."""
        batch: list[tuple[Deployment, asyncio.Future[float | None]]] = []
        try:
            while self._queue and self._healthy:
                batch, self._queue = self._queue[:_MAX_BATCH], self._queue[_MAX_BATCH:]
                for (_, future), verdict in zip(batch, await self._admit_batch(batch), strict=True):
                    if not future.done():  # the request may have been cancelled meanwhile
                        future.set_result(verdict)
        finally:
            self._flusher = None
            leftover, self._queue = batch + self._queue, []  # Redis went away, or close() cancelled us
            for _, future in leftover:
                if not future.done():
                    future.set_result(None)  # decided on local state

    async def _admit_batch(self, batch: Sequence[tuple[Deployment, Any]]) -> list[float | None]:
        """0 = admitted, > 0 = seconds until the window ends (inf: at max parallel), None = Redis did not answer."""
        args: list[Any] = [self._window_ms, self.instance, f"{self.redis_settings.key_prefix}:alive:"]
        for deployment, _ in batch:
            args += [self._base(deployment), deployment.rpm or 0, deployment.tpm or 0]
            args.append(deployment.max_parallel_requests or 0)
        try:
            reply = await self._admit(args=args)
        except _FAILURES as exc:
            self._trip(exc)
            return [None] * len(batch)
        wait = int(reply[0]) / 1000.0
        verdicts: list[float | None] = []
        for (deployment, _), admitted in zip(batch, reply[1:], strict=True):
            if int(admitted) == 1:
                self._admit_locally(deployment)  # keeps the local count warm for a fallback
                if deployment.max_parallel_requests is not None:
                    self._par_held[id(deployment)] += 1
                verdicts.append(0.0)
            elif int(admitted) == 2:  # others' calls fill it: blocked until a sync says otherwise
                shared = self._shared[id(deployment)]
                shared.elsewhere = max(shared.elsewhere, deployment.max_parallel_requests or 0)
                verdicts.append(math.inf)
            else:
                self._shared[id(deployment)].limited_until = self.clock() + wait
                verdicts.append(wait)
        return verdicts

    def _fallback(self, deployment: Deployment) -> float:
        self.local_fallbacks += 1
        if self.redis_settings.failure_mode == "closed":
            raise ServiceUnavailableError(
                f"rate limits for {deployment.model_name!r} cannot be checked: the shared state (Redis) is "
                "unavailable and redis_failure_mode is 'closed'",
                model=deployment.model_name,
                retry_after=1,
            )
        return self._admit_locally(deployment)

    def finish(self, deployment: Deployment) -> None:
        super().finish(deployment)
        key = id(deployment)
        if self._par_held.get(key):  # a max_parallel_requests slot counted in Redis: give it back
            self._par_held[key] -= 1
            self._releases[key] = self._releases.get(key, 0) + 1
            self._start_releaser()

    def _start_releaser(self) -> None:
        if self._releaser is None and self._client is not None:
            self._releaser = asyncio.get_running_loop().create_task(
                self._flush_releases(), name="llmplex-redis-release"
            )

    async def _flush_releases(self) -> None:
        """Send the pending slot releases, one pipeline per batch; kept for the next try if Redis fails."""
        try:
            while self._releases and self._client is not None:
                releases, self._releases = self._releases, {}
                try:
                    async with self._client.pipeline(transaction=False) as pipe:
                        for key, count in releases.items():
                            pipe.hincrby(f"{self._base(self._by_id[key])}:par", self.instance, -count)
                        await pipe.execute()
                except _FAILURES as exc:
                    for key, count in releases.items():
                        self._releases[key] = self._releases.get(key, 0) + count
                    self._trip(exc)
                    return  # the next sync tries again
        finally:
            self._releaser = None

    def record_success(self, deployment: Deployment, latency_ms: float, tokens: int, *, whole: bool = True) -> None:
        super().record_success(deployment, latency_ms, tokens, whole=whole)
        shared = self._shared[id(deployment)]
        shared.pending_tokens += tokens
        shared.sample_sum += latency_ms
        shared.samples += 1

    def record_latency(self, deployment: Deployment, latency_ms: float) -> None:
        super().record_latency(deployment, latency_ms)
        self._shared[id(deployment)].fresh.append(latency_ms)

    async def record_failure(self, deployment: Deployment, *, may_cool_down: bool) -> None:
        if self._healthy and self._client is not None:
            settings = self.settings
            args = [
                self._base(deployment),
                settings.allowed_fails,
                round(settings.cooldown_time * 1000),
                int(may_cool_down),
                round(FAIL_WINDOW * 1000),
            ]
            try:
                left_ms = int(await self._fail(args=args))
            except _FAILURES as exc:
                self._trip(exc)
            else:
                if left_ms > 0:
                    self.stats(deployment).cooldown_until = self.clock() + left_ms / 1000.0
                return
        self.local_fallbacks += 1
        self._fail_locally(deployment, may_cool_down=may_cool_down)

    def in_flight(self, deployment: Deployment) -> int:
        return super().in_flight(deployment) + (self._shared[id(deployment)].elsewhere if self._healthy else 0)

    def latency_ms(self, deployment: Deployment) -> float | None:
        shared = self._shared[id(deployment)].latency_ms
        return shared if self._healthy and shared is not None else super().latency_ms(deployment)

    def latency_samples(self, deployment: Deployment) -> list[float]:
        recent = self._shared[id(deployment)].recent
        return recent if self._healthy and recent else super().latency_samples(deployment)

    def tokens(self, deployment: Deployment) -> int:
        if not self._healthy:
            return super().tokens(deployment)
        shared = self._shared[id(deployment)]
        return shared.tokens + shared.pending_tokens

    # background sync

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(SYNC_INTERVAL)
            try:
                if await self.sync_once() and self._releases:
                    self._start_releaser()
            except Exception as exc:  # an unexpected reply must not end sharing for the life of the process
                self._trip(exc)

    async def sync_once(self) -> bool:
        """Publish this process's numbers and read everyone's; False when Redis did not answer."""
        if self._client is None:
            return False
        taken = [self._take(d) for d in self.deployments]
        args: list[Any] = [self.redis_settings.key_prefix, self.instance, _STALE_MS, self._window_ms, WINDOW]
        for deployment, (tokens, total, samples, fresh) in zip(self.deployments, taken, strict=True):
            text = ",".join(f"{ms:.1f}" for ms in fresh)
            args += [deployment.model_id, super().in_flight(deployment), tokens, total, samples, text]
        try:
            reply = await self._sync(args=args)
        except _FAILURES as exc:
            for deployment, (tokens, _, _, fresh) in zip(self.deployments, taken, strict=True):
                shared = self._shared[id(deployment)]
                shared.pending_tokens += tokens  # publish them next time
                shared.fresh.extendleft(reversed(fresh))
            self._trip(exc)
            return False
        self._apply(reply)
        if not self._healthy:
            self._healthy = True
            logger.warning("Redis is reachable again: rate limits and routing state are shared again")
        return True

    def _take(self, deployment: Deployment) -> tuple[int, float, int, list[float]]:
        shared = self._shared[id(deployment)]
        taken = (shared.pending_tokens, shared.sample_sum, shared.samples, list(shared.fresh))
        shared.pending_tokens, shared.sample_sum, shared.samples = 0, 0.0, 0
        shared.fresh.clear()
        return taken

    def _apply(self, reply: list[Any]) -> None:
        now = self.clock()
        window_left = int(reply[0]) / 1000.0
        for i, deployment in enumerate(self.deployments):
            elsewhere, tokens, requests, latency, cooldown_ms, recent = reply[1 + 6 * i : 7 + 6 * i]
            shared = self._shared[id(deployment)]
            if recent != shared.recent_text:
                shared.recent_text = recent
                comma = b"," if isinstance(recent, bytes) else ","
                parsed = (_latency(ms) for ms in recent.split(comma)) if recent else ()
                shared.recent = [ms for ms in parsed if ms is not None]
            shared.elsewhere, shared.tokens = max(0, int(elsewhere)), max(0, int(tokens))
            # a missing key (expired, deleted) drops the shared value: the local one applies again
            shared.latency_ms = _latency(latency) if latency else None
            # never longer than this config's cooldown (a key set by someone else may carry any TTL)
            cooldown_ms = min(int(cooldown_ms), round(self.settings.cooldown_time * 1000))
            self.stats(deployment).cooldown_until = now + cooldown_ms / 1000.0 if cooldown_ms > 0 else 0.0
            full = (deployment.rpm is not None and int(requests) >= deployment.rpm) or (
                deployment.tpm is not None and shared.tokens >= deployment.tpm
            )
            if full:
                shared.limited_until = now + window_left

    def _trip(self, exc: BaseException) -> None:
        self.redis_errors += 1
        was_healthy, self._healthy = self._healthy, False
        now = time.monotonic()
        if was_healthy or now - self._last_warning >= WARN_EVERY:
            self._last_warning = now
            mode = "refusing rate-limited requests" if self.redis_settings.failure_mode == "closed" else "per process"
            logger.warning(
                "Redis unavailable (%s: %s): rate limits, cooldowns and routing statistics are %s until it is back "
                "(%d Redis errors so far)",
                type(exc).__name__,
                exc,
                mode,
                self.redis_errors,
            )


def _latency(text: bytes | str) -> float | None:
    """A latency read from Redis, or None unless it is a finite number >= 0 (anyone with access to Redis can
    write its keys: a NaN would make every comparison false and the latency strategy pick from nothing)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None
