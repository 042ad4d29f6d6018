"""``KeyService``: virtual keys on the request path (cache lookups only) and their life around it.

The proxy builds one per app when a master key is set. ``start()`` (in the lifespan) opens the store
when a ``database_url`` is configured or the default SQLite file exists (otherwise the first
management write creates it, so a proxy without keys never imports SQLAlchemy), loads the cache and
starts three background tasks: the cache refresher (polls the epoch row every 0.5 s, 1 s with Redis, reloads on a
change and every 5 s for spend), the Redis listener (instant reloads when Redis is configured) and
the spend writer. A database outage never reaches inference: known keys keep working from the
cache, spend is buffered, and ``health()`` says what is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmplex.proxy.config import ProxyConfig
from llmplex.proxy.errors import ProxyError
from llmplex.proxy.keys.cache import KeyCache
from llmplex.proxy.keys.charge import Charges
from llmplex.proxy.keys.limits import LocalLimiter, RedisLimiter
from llmplex.proxy.keys.model import Principal, hash_key, model_allowed
from llmplex.proxy.keys.spend import SpendWriter
from llmplex.router.fallbacks import queue_bound
from llmplex.store.url import database_url, describe_url, sqlite_path

if TYPE_CHECKING:
    from llmplex.config import ClientConfig
    from llmplex.proxy.access_log import RequestRecord
    from llmplex.proxy.keys.admin_keys import KeyAdmin
    from llmplex.proxy.keys.admin_teams import TeamAdmin

__all__ = ["KeyService"]

logger = logging.getLogger("llmplex.proxy.keys")

_AUTH = "auth_error"
_CLOSE_TIMEOUT = 5.0
_POLL = 0.5
_POLL_REDIS = 1.0
_TOKENS_KEPT = 10_000
_ALLOWED_KEPT = 256


class KeyService:
    def __init__(
        self, config: ProxyConfig, *, refresh_interval: float | None = None, full_reload_every: float = 5.0
    ) -> None:
        self.config = config
        self.url = database_url(config.database_url, config.data_dir)
        self.configured = config.database_url is not None
        # the epoch poll is the only way changes arrive without Redis (0.5 s: within LiteLLM's 1 s promise at
        # a tenth of the earlier cost); with Redis, pub/sub delivers at once and the poll is only a backstop
        if refresh_interval is None:
            refresh_interval = _POLL_REDIS if config.redis is not None else _POLL
        self.refresh_interval = refresh_interval
        self.full_reload_every = full_reload_every
        self.store: Any = None  # llmplex.store.Store once open (imported lazily)
        self.cache = KeyCache()
        window, longest = config.router.rate_limit_window, config.router.queue_max_length
        self.limiter: LocalLimiter = (
            RedisLimiter(config.redis, window, queue_max_length=longest)
            if config.redis
            else LocalLimiter(window, queue_max_length=longest)
        )
        self.writer = SpendWriter(self._write_spend)
        self.charges = Charges(self, config)
        self.groups_of = _access_groups(config)
        self.db_error: str | None = None
        self._open_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: Any = None
        self._last_warning = 0.0
        self._admin: tuple[Any, Any] | None = None
        self._tokens: dict[bytes, str] = {}  # presented key -> its sha256 (what the cache is keyed by)

    def __repr__(self) -> str:
        return f"KeyService({describe_url(self.url)!r}, keys={len(self.cache.keys)})"

    @property
    def channel(self) -> str:
        prefix = self.config.redis.key_prefix if self.config.redis else "llmplex"
        return f"{prefix}:keys:changed"

    # lifecycle

    async def start(self) -> None:
        await self.limiter.start()
        if self._database_exists():
            await self.open_store()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._refresh_forever(), name="llmplex-keys-refresh"),
            loop.create_task(self.writer.run(), name="llmplex-spend-writer"),
        ]
        if self.config.redis is not None:
            self._tasks.append(loop.create_task(self._listen_forever(), name="llmplex-keys-listen"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=_CLOSE_TIMEOUT)
        self._tasks = []
        with contextlib.suppress(Exception):  # the last spend, if the database takes it in time
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await self.writer.flush()
        await self.limiter.close()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
        store, self.store = self.store, None
        if store is not None:
            await store.close()

    def _database_exists(self) -> bool:
        if self.configured:
            return True
        path = sqlite_path(self.url)
        return path is not None and path.exists()

    async def open_store(self) -> Any:
        """The open store, opening (and migrating) it first if needed; None when the database is unreachable."""
        async with self._open_lock:
            if self.store is not None:
                return self.store
            loop = asyncio.get_running_loop()
            module = await loop.run_in_executor(None, importlib.import_module, "llmplex.store.store")
            store = module.Store(self.url)
            try:
                await store.open()
            except Exception as exc:
                self._failed("cannot open the key database", exc)
                await store.close()
                return None
            self.store = store
        await self.reload()
        return store

    async def admin(self) -> tuple[KeyAdmin, TeamAdmin]:
        """The management operations (their modules import SQLAlchemy: in a thread, on first use)."""
        if self._admin is None:
            loop = asyncio.get_running_loop()
            module = await loop.run_in_executor(None, importlib.import_module, "llmplex.proxy.keys.admin_teams")
            keys = module.KeyAdmin(self)
            self._admin = (keys, module.TeamAdmin(self, keys))
        return self._admin

    # cache

    async def reload(self) -> None:
        from llmplex.proxy.keys import repository

        async with self.writer.lock:
            async with self.store.read() as conn:
                epoch, entities = await repository.load_all(conn)
            self.cache.replace(epoch, entities, self.writer.unsent())
        self.db_error = None

    async def _refresh_forever(self) -> None:
        from_full = time.monotonic()
        while True:
            await asyncio.sleep(self.refresh_interval)
            try:
                if self.store is None:
                    if self._database_exists():
                        await self.open_store()
                    continue
                from llmplex.proxy.keys import repository

                async with self.store.read() as conn:
                    epoch = await repository.read_epoch(conn)
                self.db_error = None  # reachable again
                now = time.monotonic()
                if epoch != self.cache.epoch or now - from_full >= self.full_reload_every:
                    await self.reload()
                    from_full = now
                await self.charges.reset_budgets()
            except Exception as exc:  # keep serving from the cache; try again next round
                self._failed("key cache refresh failed", exc)

    async def _listen_forever(self) -> None:
        from redis import asyncio as aioredis

        settings = self.config.redis
        assert settings is not None
        while True:
            try:
                if settings.url:
                    client = aioredis.Redis.from_url(settings.url, socket_connect_timeout=1.0)
                else:
                    client = aioredis.Redis(
                        host=settings.host, port=settings.port, password=settings.password, socket_connect_timeout=1.0
                    )
                self._redis = client
                freed = self.limiter.freed_channel if isinstance(self.limiter, RedisLimiter) else None
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel, *([freed] if freed else []))
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if message is None:
                            continue
                        if freed is not None and message["channel"] == freed.encode():
                            self.limiter.freed()  # a key's call finished in another process: waiters re-check
                        elif self.store is not None:
                            await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed("Redis key-change channel unavailable (falling back to polling)", exc)
                await asyncio.sleep(1.0)

    async def changed(
        self, epoch: int | None = None, *, put: Sequence[dict[str, Any]] = (), removed: Sequence[str] = ()
    ) -> None:
        """After a management write (which bumped the epoch in its transaction): update this cache, tell the others.

        A key-only change that directly follows what the cache holds (``epoch`` = cached + 1) is applied in
        place (``put`` key rows, ``removed`` tokens): a full reload costs O(keys). Anything else reloads.
        """
        incremental = False
        async with self.writer.lock:
            if epoch is not None and epoch == self.cache.epoch + 1:
                from llmplex.proxy.keys import repository

                incremental = True
                unsent = self.writer.unsent()
                for token in removed:
                    self.cache.remove("key", token)
                for row in put:
                    entity = repository.entity_of("key", row)
                    entity.spend += unsent.get(("key", entity.id), 0.0)
                    self.cache.put(entity)
                self.cache.epoch = epoch
        if not incremental:
            await self.reload()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self._redis.publish(self.channel, b"1")

    def _failed(self, what: str, exc: BaseException) -> None:
        self.db_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        now = time.monotonic()
        if now - self._last_warning >= 30.0:
            self._last_warning = now
            logger.warning("%s: %s", what, self.db_error)

    async def _write_spend(self, amounts: dict[tuple[Any, str], float], rows: list[tuple[Any, ...]]) -> None:
        store = self.store
        if store is None:
            raise RuntimeError("the key database is not open")
        from llmplex.proxy.keys import repository

        async with store.transaction() as conn:
            await repository.add_spend(conn, amounts)
            await repository.insert_logs(conn, rows)

    # the request path

    def authenticate(self, api_key: bytes) -> Principal | None:
        """The caller of a virtual key; None for an unknown key (the authenticator's own 401); a 401 for an
        expired or blocked key (LiteLLM's messages). A cache lookup: never touches the database."""
        token = self._tokens.get(api_key)
        if token is None:  # sha256 once per key seen, not per request (bounded: random keys only churn it)
            if len(self._tokens) >= _TOKENS_KEPT:
                self._tokens.clear()
            token = self._tokens[api_key] = hash_key(api_key)
        principal = self.cache.principal(token)
        if principal is None:
            if not self.cache.loaded and self._database_exists():
                raise ProxyError(
                    503, "Virtual keys cannot be checked right now: the key database is unavailable", type=_AUTH
                )
            return None
        if principal.plain:  # no expiry, nothing blocked: the common case costs two dict lookups
            return principal
        key = principal.key
        now = time.time()
        if key.expires is not None and key.expires < now:
            raise ProxyError(
                401,
                f"Authentication Error - Expired Key. Key Expiry time {_iso(key.expires)} and current time {_iso(now)}",
                type="expired_key",
                param="key",
            )
        if key.blocked:
            raise ProxyError(
                401, "Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin.", type=_AUTH
            )
        team = principal.team
        if team is not None and team.blocked:
            raise ProxyError(
                401,
                f"Authentication Error, Team={team.id} is blocked. Update via `/team/unblock` if you're an admin.",
                type=_AUTH,
            )
        return principal

    async def before_request(
        self,
        principal: Principal,
        models: Sequence[str],
        record: RequestRecord | None,
        options: Mapping[str, Any] | None = None,
        client_config: ClientConfig | None = None,
    ) -> Any:
        """Model access (403), budget (422), then rpm/tpm/parallel admission (waiting in the key's line, then 429);
        the record's ``done`` charges. ``options``: the request's (its ``priority`` and timeout set the place in
        line and the wait's bound, as for the router's group line); ``client_config``: its default timeout."""
        self.check_models(principal, models)
        if principal.budgeted:
            self.charges.check_budget(principal)
        admission = None
        if principal.limits:
            settings = self.config.router
            priority = options.get("priority") if options else None
            if priority is None:
                priority = settings.default_priority or 0
            elif isinstance(priority, bool) or not isinstance(priority, int):
                raise ProxyError(400, f"priority must be an integer, got {priority!r}", param="priority")
            bound = queue_bound(settings, client_config, options or {}) if settings.queue_timeout > 0 else 0.0
            admission = await self.limiter.admit(principal.limits, principal.key.id, priority, bound)
        if record is not None:
            record.done = functools.partial(self.charges.finish, principal, admission)
        elif admission is not None:
            self.limiter.release(admission, 0)  # nothing will report the end: do not hold the slot
        return admission

    def check_models(self, principal: Principal, names: Sequence[str]) -> None:
        """403 naming the model (LiteLLM 1.108's status and wording) unless key, user and team all allow it."""
        allowed = principal.allowed
        for name in names:
            if name in allowed:
                continue
            for entity in principal.all:
                if not model_allowed(name, entity.models, self.groups_of):
                    raise ProxyError(
                        403,
                        f"The requested model '{name}' is not available for this API key, or the model name is "
                        "invalid. Check the models available to you and try again.",
                        type=f"{entity.kind}_model_access_denied",
                        param="model",
                    )
            if len(allowed) < _ALLOWED_KEPT:  # bounded: a key allowed every model may be sent any name
                allowed.add(name)

    def visible_models(self, principal: Principal, names: Sequence[str]) -> list[str]:
        return [n for n in names if all(model_allowed(n, e.models, self.groups_of) for e in principal.all)]

    def health(self) -> dict[str, Any]:
        state = "connected" if self.store is not None and self.db_error is None else "unavailable"
        if self.store is None and not self._database_exists():
            state = "not created yet"
        body: dict[str, Any] = {"db": state, "spend_buffered_rows": self.writer.buffered}
        if self.db_error or self.writer.last_error:
            body["db_error"] = self.writer.last_error or self.db_error
        if self.writer.dropped_rows:
            body["spend_dropped_rows"] = self.writer.dropped_rows
        return body


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat()


def _access_groups(config: ProxyConfig) -> dict[str, tuple[str, ...]]:
    """Public model name -> the access groups it belongs to (``model_info.access_groups``), aliases included."""
    groups: dict[str, set[str]] = {}
    for deployment in config.deployments:
        groups.setdefault(deployment.model_name, set()).update(deployment.access_groups)
    for alias, target in config.router.model_group_alias.items():
        groups.setdefault(alias, set()).update(groups.get(target, set()))
    return {name: tuple(sorted(found)) for name, found in groups.items()}
