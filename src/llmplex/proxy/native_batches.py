"""Proxy batches sent to a provider's own batch API (half price): groups in ``llmplex_settings.native_batches``.

A batch whose lines all name one such group, served by a deployment whose provider has a batch API
(see ``llmplex.batches.registry``), is submitted there (split over the provider's limits) instead of
being run line by line. Its lines start claimed by ``native:<batch id>`` so the executor leaves them
alone; a poller reads the provider's batches every ``batch_native_poll_seconds``, writes each answer
into its line, and when every provider batch has ended hands back the lines it did not answer: the
executor then runs them here (a failed or expired provider batch degrades to local execution).
If the submission itself fails, the lines are handed back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from llmplex.batches.registry import BATCH_PROVIDERS
from llmplex.providers import resolve_model

if TYPE_CHECKING:
    from llmplex import AsyncClient
    from llmplex.batches.jobstore import JobStore, LineResult
    from llmplex.router import Deployment, Router

__all__ = ["NativeBatches", "native_owner"]

logger = logging.getLogger("llmplex.batches")

Charge = Callable[[dict[str, Any], "Deployment", list[dict[str, Any]]], None]


def native_owner(batch_id: str) -> str:
    return f"native:{batch_id}"


class NativeBatches:
    def __init__(
        self,
        router: Router,
        groups: tuple[str, ...],
        poll_seconds: float,
        client: Callable[[], AsyncClient | None],
        charge: Charge | None = None,
    ) -> None:
        """``charge(batch row, deployment, result lines)``: called once per provider batch collected, with the
        provider's result lines of ours (their cost is the creator's; see ``batch_charge``)."""
        self.router = router
        self.groups = frozenset(groups)
        self.poll_seconds = poll_seconds
        self._client = client
        self.charge = charge
        self._task: asyncio.Task[None] | None = None

    def deployment_for(self, groups: set[str]) -> Deployment | None:
        """The deployment a batch of lines for ``groups`` goes to natively, or None (run it here)."""
        if len(groups) != 1 or not groups <= self.groups:
            return None
        (group,) = groups
        for deployment in self.router.deployments:
            if deployment.model_name == group and deployment.provider in BATCH_PROVIDERS:
                return deployment
        return None

    async def submit(self, jobs: JobStore, batch_id: str, deployment: Deployment, lines: list[dict[str, Any]]) -> None:
        """Send the lines (already claimed by ``native_owner``) to the provider; on failure hand them back."""
        from llmplex.batches.job import split_lines
        from llmplex.batches.ops import batch_call, submit_lines

        owner = native_owner(batch_id)
        try:
            client = self._client()
            if client is None:
                raise RuntimeError("the proxy is stopping")
            call = batch_call(client, deployment.provider, dict(deployment.params))
            model_id = resolve_model(deployment.model)[1]
            wire_lines = [{**line, "body": {**line["body"], "model": model_id}} for line in lines]
            ids = []
            for start, end in split_lines(wire_lines, call.wire.max_requests, call.wire.max_bytes):
                ids.append((await submit_lines(call, wire_lines[start:end], None)).id)
        except Exception as exc:
            logger.warning("batch %s: native submission failed, running it here: %s", batch_id, exc)
            await jobs.release(owner)
            return
        await jobs.set_native(batch_id, {"group": deployment.model_name, "ids": ids, "done": []})

    def start(self, jobs: JobStore, wake: Callable[[], None]) -> None:
        if self.groups and self._task is None:
            self._task = asyncio.create_task(self._poll_loop(jobs, wake), name="llmplex-native-batches")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _poll_loop(self, jobs: JobStore, wake: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                for row in await jobs.native_batches():
                    if await self._poll(jobs, row):
                        wake()
            except Exception as exc:  # database or provider trouble: try again at the next poll
                logger.warning("native batch poll failed: %s", exc)

    async def _poll(self, jobs: JobStore, row: dict[str, Any]) -> bool:
        """Collect what ended; True when every provider batch has ended (the lines left are handed back)."""
        from llmplex.batches.ops import batch_call, result_lines

        native = dict(row["native"])
        deployment = self.deployment_for({native["group"]})
        client = self._client()
        if deployment is None or client is None:
            return False
        call = batch_call(client, deployment.provider, dict(deployment.params))
        owner = native_owner(row["id"])
        indexes: dict[str, int] | None = None
        for provider_id in native["ids"]:
            if provider_id in native["done"]:
                continue
            batch = call.wire.parse_batch(await call.json(call.wire.get_batch(call.endpoint, provider_id)))
            if row["status"] == "cancelling" and not batch.ended:
                with contextlib.suppress(Exception):
                    await call.json(call.wire.cancel_batch(call.endpoint, provider_id))
                continue
            if not batch.ended:
                continue
            indexes = indexes if indexes is not None else await jobs.line_indexes(row["id"])
            lines = await result_lines(call, batch)
            results = [_line_result(row["id"], indexes, line) for line in lines]
            await jobs.finish(owner, [r for r in results if r is not None])
            native["done"] = [*native["done"], provider_id]
            await jobs.set_native(row["id"], native)
            if self.charge is not None:  # after "done" is kept: a poll that failed before it collects again
                self.charge(row, deployment, [line for line, r in zip(lines, results, strict=True) if r is not None])
        if len(native["done"]) < len(native["ids"]):
            return False
        await jobs.release(owner)
        await jobs.finalize(row["id"])
        return True


def _line_result(batch_id: str, indexes: dict[str, int], line: dict[str, Any]) -> LineResult | None:
    from llmplex.batches.jobstore import LineResult  # SQLAlchemy: only once a database is open

    index = indexes.get(str(line.get("custom_id")))
    response = line.get("response")
    if index is None or not isinstance(response, dict):
        return None  # not ours, or never run by the provider (handed back and run here)
    status = int(response.get("status_code") or 500)
    return LineResult(batch_id, index, status, orjson.dumps(response.get("body")).decode())
