"""Per-key (and per-user, per-team) rpm / tpm / parallel limits: fixed windows, in process or in Redis.

``admit(entities, line, priority, bound)`` counts one request against every limited entity of the
caller (the strictest wins). When one of them is full the request waits in its key's line
(``waiting.KeyLine``: lower ``priority`` first, FIFO within one) until the window has room or
``bound`` seconds pass, then gets a 429 ``ProxyError`` with ``retry-after``; ``bound`` 0 refuses at
once. ``release`` gives back the parallel slot and adds the answer's tokens to the tpm windows. With
Redis, one Lua call checks and counts for all entities at once, so a limit holds across workers and
replicas; when Redis fails the limiter falls back to per-process counters (fail-open, like the
router's state).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from llmplex.proxy.errors import ProxyError
from llmplex.proxy.keys.model import Entity
from llmplex.proxy.keys.waiting import KeyLine
from llmplex.proxy.redis_settings import RedisSettings

__all__ = ["Admission", "Full", "LocalLimiter", "RedisLimiter"]

logger = logging.getLogger("llmplex.proxy.keys")

# KEYS: per entity (requests window, tokens window, in-flight); ARGV: window ms, then per entity
# (rpm, tpm, parallel) limits, 0 = none. Returns {status, entity index, what, 0, then per entity
# requests and tokens after counting}. Nothing is counted unless every entity has room.
_ADMIT = """
local n = #KEYS / 3
local counts = {}
for i = 1, n do
  local r = tonumber(redis.call('GET', KEYS[3*i-2]) or '0')
  local t = tonumber(redis.call('GET', KEYS[3*i-1]) or '0')
  local p = tonumber(redis.call('GET', KEYS[3*i]) or '0')
  local rpm, tpm, par = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i]), tonumber(ARGV[3*i+1])
  if rpm > 0 and r >= rpm then return {1, i, 1, 0} end
  if tpm > 0 and t >= tpm then return {1, i, 2, 0} end
  if par > 0 and p >= par then return {1, i, 3, 0} end
  counts[2*i-1], counts[2*i] = r, t
end
local out = {0, 0, 0, 0}
for i = 1, n do
  local r = redis.call('INCR', KEYS[3*i-2])
  if r == 1 then redis.call('PEXPIRE', KEYS[3*i-2], ARGV[1]) end
  if tonumber(ARGV[3*i+1]) > 0 then
    redis.call('INCR', KEYS[3*i])
    redis.call('PEXPIRE', KEYS[3*i], 600000)
  end
  out[#out+1] = r
  out[#out+1] = counts[2*i]
end
return out
"""

_WHAT = {1: "requests", 2: "tokens", 3: "max_parallel_requests"}
_WARN_EVERY = 30.0


class Admission:
    """One admitted request: its entities, and the rate-limit headers LiteLLM sends for the key."""

    __slots__ = ("entities", "headers", "window")

    def __init__(self, entities: Sequence[Entity], window: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.entities = entities
        self.window = window
        self.headers = headers


class Full:
    """Why a request cannot be admitted now: the entity and limit that is full, and when it empties.

    ``until`` is the clock time the window ends (rpm, tpm), or ``math.inf`` for ``max_parallel_requests``
    (only a call finishing frees a slot).
    """

    __slots__ = ("entity", "limit", "until", "what")

    def __init__(self, entity: Entity, what: str, limit: int | None, until: float) -> None:
        self.entity, self.what, self.limit, self.until = entity, what, limit, until

    def refusal(self, now: float) -> ProxyError:
        """LiteLLM's 429 for a key, user or team limit, with ``retry-after`` (whole seconds, at least 1)."""
        retry_after = 1.0 if self.until == math.inf else max(self.until - now, 0.0)
        entity = self.entity
        descriptor = {"key": "api_key", "user": "user", "team": "team"}[entity.kind]
        resets = datetime.fromtimestamp(time.time() + retry_after, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        error = ProxyError(
            429,
            f"Rate limit exceeded for {descriptor}: {entity.alias or entity.id}. Limit type: {self.what}. "
            f"Current limit: {self.limit}, Remaining: 0. Limit resets at: {resets}",
            type="rate_limit_error",
        )
        error.retry_after = max(1, math.ceil(retry_after))
        return error


def _headers(key: Entity | None, requests: int, tokens: int) -> list[tuple[bytes, bytes]]:
    if key is None:
        return []
    out: list[tuple[bytes, bytes]] = []
    if key.rpm_limit:
        out.append((b"x-ratelimit-remaining-requests", str(max(key.rpm_limit - requests, 0)).encode()))
        out.append((b"x-ratelimit-limit-requests", str(key.rpm_limit).encode()))
    if key.tpm_limit:
        out.append((b"x-ratelimit-remaining-tokens", str(max(key.tpm_limit - tokens, 0)).encode()))
        out.append((b"x-ratelimit-limit-tokens", str(key.tpm_limit).encode()))
    return out


class _Counter:
    __slots__ = ("in_flight", "requests", "tokens", "window")

    def __init__(self) -> None:
        self.window = -1
        self.requests = 0
        self.tokens = 0
        self.in_flight = 0


class LocalLimiter:
    """Counters in this process: exact for one worker; with several workers each counts its own requests."""

    shared = False

    def __init__(
        self, window: float = 60.0, *, queue_max_length: int = 1000, clock: Callable[[], float] = time.time
    ) -> None:
        self.window = window
        self.clock = clock
        self.queue_max_length = queue_max_length
        self._counters: dict[tuple[str, str], _Counter] = {}
        self._lines: dict[str, KeyLine] = {}  # key token -> its waiting line, while anyone waits

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to close."""

    def _counter(self, entity: Entity, window: int) -> _Counter:
        counter = self._counters.get((entity.kind, entity.id))
        if counter is None:
            counter = self._counters[(entity.kind, entity.id)] = _Counter()
        if counter.window != window:
            counter.window, counter.requests, counter.tokens = window, 0, 0
        return counter

    async def admit(self, entities: Sequence[Entity], line: str, priority: int = 0, bound: float = 0.0) -> Admission:
        """Admitted (counted), after waiting in ``line`` up to ``bound`` seconds if needed; else a 429."""
        lines = self._lines
        full = None
        # newcomers go behind those already waiting (one that will not wait tries even past a line)
        if bound <= 0 or not lines or line not in lines:
            got = await self.try_admit(entities)
            if type(got) is Admission:
                return got
            assert isinstance(got, Full)
            if bound <= 0:
                raise got.refusal(self.clock())
            full = got
        waiting = lines.get(line)
        if waiting is None:
            waiting = lines[line] = KeyLine(self, line, self.queue_max_length)
        return await waiting.wait(entities, priority, bound, full)

    async def try_admit(self, entities: Sequence[Entity]) -> Admission | Full:
        return self.check(entities)

    def check(self, entities: Sequence[Entity]) -> Admission | Full:
        """Count the request in this process, or say which limit is full."""
        now = self.clock()
        window = int(now // self.window)
        end = (window + 1) * self.window
        counters = [self._counter(e, window) for e in entities]
        for entity, c in zip(entities, counters, strict=True):
            if entity.rpm_limit and c.requests >= entity.rpm_limit:
                return Full(entity, "requests", entity.rpm_limit, end)
            if entity.tpm_limit and c.tokens >= entity.tpm_limit:
                return Full(entity, "tokens", entity.tpm_limit, end)
            if entity.max_parallel_requests and c.in_flight >= entity.max_parallel_requests:
                return Full(entity, "max_parallel_requests", entity.max_parallel_requests, math.inf)
        for c in counters:
            c.requests += 1
            c.in_flight += 1
        key = entities[0] if entities and entities[0].kind == "key" else None
        first = counters[0] if key is not None else None
        return Admission(entities, window, _headers(key, first.requests if first else 0, first.tokens if first else 0))

    def release(self, admission: Admission, tokens: int) -> None:
        for entity in admission.entities:
            counter = self._counters.get((entity.kind, entity.id))
            if counter is None:
                continue
            counter.in_flight = max(counter.in_flight - 1, 0)
            if counter.window == admission.window:
                counter.tokens += tokens
        if self._lines:
            self.freed()

    def freed(self) -> None:
        """A call finished (here, or in another process with Redis): waiting lines re-check their parallel slots."""
        for line in self._lines.values():
            line.freed()

    def line_closed(self, name: str, line: KeyLine) -> None:
        """The line's last waiter left: newcomers take the fast path again."""
        if self._lines.get(name) is line:
            del self._lines[name]


class RedisLimiter(LocalLimiter):
    """The same windows in Redis, shared by every worker and replica; per process while Redis is down."""

    shared = True

    def __init__(
        self,
        settings: RedisSettings,
        window: float = 60.0,
        *,
        queue_max_length: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(window, queue_max_length=queue_max_length, clock=clock)
        self.settings = settings
        self.errors = 0
        self.freed_channel = f"{settings.key_prefix}:vk:freed"
        self._client: Any = None
        self._script: Any = None
        self._last_warning = -_WARN_EVERY
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        from redis import asyncio as aioredis

        options: dict[str, Any] = {"socket_timeout": self.settings.timeout, "socket_connect_timeout": 1.0}
        if self.settings.url:
            self._client = aioredis.Redis.from_url(self.settings.url, **options)
        else:
            s = self.settings
            self._client = aioredis.Redis(host=s.host, port=s.port, password=s.password, **options)
        self._script = self._client.register_script(_ADMIT)

    async def close(self) -> None:
        if self._pending:
            await asyncio.wait(self._pending, timeout=1.0)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _names(self, entity: Entity, window: int) -> list[str]:
        base = f"{self.settings.key_prefix}:vk:{entity.kind}:{entity.id}"
        return [f"{base}:rpm:{window}", f"{base}:tpm:{window}", f"{base}:inflight"]

    async def try_admit(self, entities: Sequence[Entity]) -> Admission | Full:
        if self._client is None:
            return self.check(entities)
        now = self.clock()
        window = int(now // self.window)
        names: list[str] = []
        args: list[int] = [max(1, round(self.window * 2000))]  # windows expire one window after they end
        for e in entities:
            names += self._names(e, window)
            args += [e.rpm_limit or 0, e.tpm_limit or 0, e.max_parallel_requests or 0]
        try:
            reply = await self._script(keys=names, args=args)
        except Exception as exc:  # Redis down or slow: count in this process rather than fail the request
            self._trip(exc)
            return self.check(entities)
        status, index, what = int(reply[0]), int(reply[1]), int(reply[2])
        if status:
            entity = entities[index - 1]
            limit = {1: entity.rpm_limit, 2: entity.tpm_limit, 3: entity.max_parallel_requests}[what]
            # the window is named by this process's clock, so it ends where this clock says (not the key's TTL)
            return Full(entity, _WHAT[what], limit, math.inf if what == 3 else (window + 1) * self.window)
        key = entities[0] if entities and entities[0].kind == "key" else None
        requests, tokens = (int(reply[4]), int(reply[5])) if key is not None else (0, 0)
        return Admission(entities, window, _headers(key, requests, tokens))

    def release(self, admission: Admission, tokens: int) -> None:
        if self._client is None:
            super().release(admission, tokens)
            return
        task = asyncio.get_running_loop().create_task(self._release(admission, tokens))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _release(self, admission: Admission, tokens: int) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                parallel = False
                for entity in admission.entities:
                    _rpm, tpm, inflight = self._names(entity, admission.window)
                    if tokens and entity.tpm_limit:
                        pipe.incrby(tpm, tokens)
                        pipe.pexpire(tpm, max(1, round(self.window * 2000)))
                    if entity.max_parallel_requests:
                        pipe.decr(inflight)
                        parallel = True
                if parallel:  # waiters in other processes sleep until told (never polling Redis)
                    pipe.publish(self.freed_channel, b"1")
                await pipe.execute()
        except Exception as exc:
            self._trip(exc)
        super().release(admission, tokens)  # harmless when the local counters never saw the request

    def _trip(self, exc: BaseException) -> None:
        self.errors += 1
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY:
            self._last_warning = now
            logger.warning("Redis unavailable for key rate limits (%s): counting per process", type(exc).__name__)
