"""The proxy's batch jobs: the store, the input files' directory and the executor, for one app.

The database opens lazily: at startup only when one is configured or the default SQLite file
already exists (a batch may be waiting to resume), else on the first ``/v1/files`` or ``/v1/batches``
request, so a proxy that never sees a batch never imports SQLAlchemy. If the database cannot be
opened or reached, the batch endpoints answer 503 and chat keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from llmplex.exceptions import RateLimitError
from llmplex.proxy.batch_charge import charge_line, charge_native
from llmplex.proxy.config import ProxyConfig
from llmplex.proxy.errors import ProxyError, error_dict, error_status
from llmplex.proxy.native_batches import NativeBatches
from llmplex.store.url import DEFAULT_DATA_DIR, database_url, sqlite_path

if TYPE_CHECKING:
    from llmplex import AsyncClient
    from llmplex.batches.executor import Executor
    from llmplex.batches.jobstore import Claimed, JobStore
    from llmplex.proxy.keys.service import KeyService
    from llmplex.router import Router
    from llmplex.router.core import Routed
    from llmplex.store import Store

__all__ = ["BatchService"]

logger = logging.getLogger("llmplex.batches")

_RATE_WAIT_MAX = 3600.0  # a line waits at most this long for room under its group's rate limits


def batch_wait(router: Router, group: str, reserve: float) -> float:
    """Seconds a batch line should wait so that ``reserve`` of each rate-limited deployment's rpm/tpm window
    stays free for live requests; 0 when a deployment of the group has room (or no limits).

    Reads the router's counters as this process sees them (with Redis, the shared window is the router's
    to enforce; this only keeps batch traffic below the reserve locally)."""
    state = router.state
    now = state.clock()
    wait: float | None = None
    for deployment in router.deployments:
        if deployment.model_name != group:
            continue
        blocked = state.blocked_for(deployment)
        if blocked > 0:
            wait = blocked if wait is None else min(wait, blocked)
            continue
        if deployment.rpm is None and deployment.tpm is None:
            return 0.0
        tokens = state.tokens(deployment)  # (rolls the window first)
        stats = state.stats(deployment)
        room_rpm = deployment.rpm is None or stats.requests < deployment.rpm * (1 - reserve)
        room_tpm = deployment.tpm is None or tokens < deployment.tpm * (1 - reserve)
        if room_rpm and room_tpm:
            return 0.0
        until = stats.window + state.window_length - now
        wait = until if wait is None else min(wait, until)
    return max(wait or 0.0, 0.01) if wait is not None else 0.0


class BatchService:
    def __init__(
        self,
        config: ProxyConfig,
        router: Router,
        client: Callable[[], AsyncClient | None],
        live: Callable[[], int] | None = None,
        keys: KeyService | None = None,
    ) -> None:
        """``live``: live requests being served now; the executor slows down for them (``max_loop_lag``).
        ``keys``: the virtual keys, charged for the lines of the batches they created."""
        self.config = config
        self.live = live
        self.keys = keys
        self.router = router
        self._client = client
        self.url = database_url(config.database_url, config.data_dir)
        self.files_dir = Path(config.data_dir or DEFAULT_DATA_DIR).absolute() / "files"
        self.store: Store | None = None
        self.jobs: JobStore | None = None
        self.executor: Executor | None = None
        self._lock = asyncio.Lock()
        self._opening: asyncio.Task[None] | None = None
        charge = functools.partial(charge_native, keys) if keys is not None else None
        self.native = NativeBatches(router, config.native_batches, config.batch_native_poll_seconds, client, charge)

    async def start(self) -> None:
        """At startup: resume batches when a database is configured or already exists (in the background)."""
        path = sqlite_path(self.url)
        if self.config.database_url or (path is not None and path.exists()):
            self._opening = asyncio.create_task(self._open_quietly())

    async def _open_quietly(self) -> None:
        with contextlib.suppress(ProxyError):
            await self.ready()

    async def ready(self) -> JobStore:
        """The job store, opening the database (and starting the executor) on first use; 503 when it is down."""
        if self.jobs is not None:
            return self.jobs
        async with self._lock:
            if self.jobs is None:
                await self._open()
        assert self.jobs is not None
        return self.jobs

    async def _open(self) -> None:
        from llmplex.batches.executor import Executor, ExecutorSettings
        from llmplex.batches.jobstore import JobStore
        from llmplex.store import Store

        store = Store(self.url)
        try:
            await store.open()
        except Exception as exc:  # refused, timed out, locked, bad credentials: the batch API is unavailable
            await store.close()
            logger.warning("batch jobs unavailable: %s", exc)
            raise ProxyError(
                503, "batch jobs are unavailable: the database cannot be reached", type="service_unavailable"
            ) from None
        self.store = store
        self.jobs = JobStore(store)
        settings = ExecutorSettings(
            concurrency=self.config.batch_concurrency, lease_seconds=self.config.batch_lease_seconds
        )
        self.executor = Executor(self.jobs, self.send, settings, self.live)
        self.executor.start()
        self.native.start(self.jobs, self.wake)

    async def send(self, line: Claimed) -> tuple[int, str]:
        """One line through the Router, as a chat request would go; failures become OpenAI error bodies. A line
        of a batch created with a virtual key is charged to that key (its user and team) once it has run."""
        started = time.time()
        model: Any = None
        group: str | None = None
        routed: Routed | None = None
        try:
            body: dict[str, Any] = orjson.loads(line.body)
            model, messages = body.pop("model"), body.pop("messages")
            group = self.router.group_for(model)
            client = self._client()
            if group is None:
                raise ProxyError(400, f"Invalid model name passed in model={model}", param="model")
            if client is None:
                raise ProxyError(503, "the proxy is stopping", type="service_unavailable")
            routed = await self._route_low(client, group, messages, body)
            status, text = 200, routed.result.wire_bytes().decode()  # type: ignore[union-attr]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            status, text = error_status(exc), orjson.dumps({"error": error_dict(exc)}).decode()
        if line.creator is not None and self.keys is not None:
            charge_line(self.keys, line, routed, model, group, status, started)
        return status, text

    async def _route_low(self, client: AsyncClient, group: str, messages: Any, body: dict[str, Any]) -> Routed:
        """Route one line below live traffic: wait while the group's rate-limited deployments have used
        ``1 - batch_rate_reserve`` of their window, and wait out the router's own "at its limit" answers
        (a batch line is never failed by our own limits) for at most ``_RATE_WAIT_MAX`` seconds."""
        deadline = time.monotonic() + _RATE_WAIT_MAX
        while True:
            wait = batch_wait(self.router, group, self.config.batch_rate_reserve)
            if wait <= 0:
                try:
                    return await self.router.route(client, group, messages, body)
                except RateLimitError as exc:
                    if exc.provider is not None:  # the upstream's 429 (already retried by the router)
                        raise
                    wait = exc.retry_after or 1.0
            if time.monotonic() + wait > deadline:
                raise RateLimitError(f"model {group!r} stayed at its rate limits for {_RATE_WAIT_MAX:g}s", model=group)
            await asyncio.sleep(min(wait, 1.0))

    def wake(self) -> None:
        if self.executor is not None:
            self.executor.wake()

    async def aclose(self) -> None:
        opening = self._opening
        if opening is not None:
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await opening
        await self.native.stop()
        if self.executor is not None:
            await self.executor.stop()
        if self.store is not None:
            await self.store.close()
