"""Spend off the request path: requests add events to a buffer; a background task writes them in batches.

Each flush is one transaction: ``spend = spend + amount`` per key, user and team, plus the request-log
rows ``/spend/logs`` reads. When the database is down the buffer keeps growing and the flush is
retried with backoff; amounts are aggregated per caller (bounded by the number of keys), log rows
are capped (the oldest are dropped past ``max_rows``, counted and reported). Inference never waits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from llmplex.proxy.keys.model import Kind, Principal

__all__ = ["SpendWriter"]

logger = logging.getLogger("llmplex.proxy.keys")

_MAX_BACKOFF = 10.0


@dataclass(slots=True)
class _Pending:
    # per caller's (key, user, team) names: one dict update a request, spread over the three when read or
    # written; bounded by the number of keys, as cache reloads build new principals with equal names
    amounts: defaultdict[tuple[tuple[Kind, str], ...], float]
    rows: list[tuple[Any, ...]]


def _per_entity(*amounts: dict[tuple[tuple[Kind, str], ...], float]) -> dict[tuple[Kind, str], float]:
    out: dict[tuple[Kind, str], float] = {}
    for part in amounts:
        for names, amount in part.items():
            for name in names:
                out[name] = out.get(name, 0.0) + amount
    return out


class SpendWriter:
    def __init__(
        self,
        write: Callable[[dict[tuple[Kind, str], float], list[tuple[Any, ...]]], Awaitable[None]],
        *,
        interval: float = 0.5,
        max_rows: int = 200_000,
    ) -> None:
        self._write = write  # one transaction; raises when the database cannot take it
        self.interval = interval
        self.max_rows = max_rows
        self.lock = asyncio.Lock()  # a flush and a cache reload never overlap (the reload adds what is unsent)
        self._pending = _Pending(defaultdict(float), [])
        self._in_flight: _Pending | None = None
        self.dropped_rows = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_success: float | None = None
        self._backoff = 0.0

    def add(self, principal: Principal, cost: float, row: tuple[Any, ...]) -> None:
        pending = self._pending
        if cost:
            pending.amounts[principal.names] += cost
        pending.rows.append(row)
        if len(pending.rows) > self.max_rows:
            drop = len(pending.rows) - self.max_rows
            del pending.rows[:drop]
            self.dropped_rows += drop

    @property
    def buffered(self) -> int:
        """Request-log rows not yet in the database."""
        in_flight = len(self._in_flight.rows) if self._in_flight else 0
        return len(self._pending.rows) + in_flight

    def unsent(self) -> dict[tuple[Kind, str], float]:
        """Spend per entity not yet in the database (including a flush that is being written)."""
        if self._in_flight is not None:
            return _per_entity(self._pending.amounts, self._in_flight.amounts)
        return _per_entity(self._pending.amounts)

    async def flush(self) -> bool:
        """Write what is buffered; True when the buffer was empty or written, False when the write failed."""
        async with self.lock:
            batch = self._pending
            if not batch.rows and not batch.amounts:
                return True
            self._pending, self._in_flight = _Pending(defaultdict(float), []), batch
            try:
                await self._write(_per_entity(batch.amounts), batch.rows)
            except Exception as exc:  # the database is down or refused: keep everything for the next try
                self._in_flight = None
                self._restore(batch)
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                if self.failures == 1 or self.failures % 20 == 0:
                    logger.warning("spend not written (%s); %d rows buffered, retrying", self.last_error, self.buffered)
                return False
            self._in_flight = None
            self.failures, self.last_error, self.last_success = 0, None, time.time()
            return True

    def _restore(self, batch: _Pending) -> None:
        newer = self._pending
        for names, amount in newer.amounts.items():
            batch.amounts[names] += amount
        batch.rows.extend(newer.rows)
        if len(batch.rows) > self.max_rows:
            drop = len(batch.rows) - self.max_rows
            del batch.rows[:drop]
            self.dropped_rows += drop
        self._pending = batch

    async def run(self) -> None:
        """Flush every ``interval`` seconds; back off (up to 10 s) while the database fails."""
        while True:
            await asyncio.sleep(self.interval + self._backoff)
            ok = await self.flush()
            self._backoff = 0.0 if ok else min(max(self._backoff * 2, 0.5), _MAX_BACKOFF)
