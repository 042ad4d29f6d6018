"""The proxy's batch jobs: the store, the input files' directory and the executor, for one app.

The database opens lazily: at startup only when one is configured or the default SQLite file
already exists (a batch may be waiting to resume), else on the first ``/v1/files`` or ``/v1/batches``
request, so a proxy that never sees a batch never imports SQLAlchemy. If the database cannot be
opened or reached, the batch endpoints answer 503 and chat keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from llmplex.proxy.config import ProxyConfig
from llmplex.proxy.errors import ProxyError, error_dict, error_status
from llmplex.store.url import DEFAULT_DATA_DIR, database_url, sqlite_path

if TYPE_CHECKING:
    from llmplex import AsyncClient
    from llmplex.batches.executor import Executor
    from llmplex.batches.jobstore import JobStore
    from llmplex.router import Router
    from llmplex.store import Store

__all__ = ["BatchService"]

logger = logging.getLogger("llmplex.batches")


class BatchService:
    def __init__(self, config: ProxyConfig, router: Router, client: Callable[[], AsyncClient | None]) -> None:
        self.config = config
        self.router = router
        self._client = client
        self.url = database_url(config.database_url, config.data_dir)
        self.files_dir = Path(config.data_dir or DEFAULT_DATA_DIR).absolute() / "files"
        self.store: Store | None = None
        self.jobs: JobStore | None = None
        self.executor: Executor | None = None
        self._lock = asyncio.Lock()

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
        self.executor = Executor(self.jobs, self.send, settings)
        self.executor.start()

    async def send(self, body_text: str) -> tuple[int, str]:
        """One line through the Router, as a chat request would go; failures become OpenAI error bodies."""
        try:
            body: dict[str, Any] = orjson.loads(body_text)
            model, messages = body.pop("model"), body.pop("messages")
            group = self.router.group_for(model)
            client = self._client()
            if group is None:
                raise ProxyError(400, f"Invalid model name passed in model={model}", param="model")
            if client is None:
                raise ProxyError(503, "the proxy is stopping", type="service_unavailable")
            routed = await self.router.route(client, group, messages, body)
            result = routed.result
            return 200, result.wire_bytes().decode()  # type: ignore[union-attr]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return error_status(exc), orjson.dumps({"error": error_dict(exc)}).decode()

    def wake(self) -> None:
        if self.executor is not None:
            self.executor.wake()

    async def aclose(self) -> None:
        opening = getattr(self, "_opening", None)
        if opening is not None:
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await opening
        if self.executor is not None:
            await self.executor.stop()
        if self.store is not None:
            await self.store.close()
