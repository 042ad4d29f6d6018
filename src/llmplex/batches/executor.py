"""The proxy's own batch runner: claims lines from the store, sends them, writes results back.

One ``Executor`` per proxy process. It claims lines of the oldest ``in_progress`` batch (see
``jobstore`` for the lease), runs at most ``concurrency`` at once through ``send`` (the proxy's
Router at batch priority), and writes results in groups (with the next claim, in its transaction, or
every ``flush_interval``) so a 100,000-line batch costs a few hundred transactions, not 100,000.
It keeps up to ``concurrency`` lines claimed ahead of the free slots. Leases of lines in flight are
renewed while they run. After a kill the lines it had claimed (those in flight, at most ``concurrency``
waiting for a slot, and answers not yet written) return to the pool when their lease ends; only those
in flight or answered can have been sent, so only those can be sent twice, and only one result per line is kept.
A database outage pauses it (with backoff); it never takes the process down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from llmplex.batches.jobstore import Claimed, Creator, JobStore, LineResult
from llmplex.store import StoreUnavailable

__all__ = ["Executor", "ExecutorSettings", "Send"]

logger = logging.getLogger("llmplex.batches")

_STOP_TIMEOUT = 10.0  # how long stop() waits for a loop to reach its next check (a slow database statement)

# send(the claimed line: its body as JSON text, its batch and who created it) -> (HTTP status, response or OpenAI
# error body as JSON text)
Send = Callable[[Claimed], Awaitable[tuple[int, str]]]


@dataclass(frozen=True, slots=True)
class ExecutorSettings:
    concurrency: int = 64
    claim_size: int = 256
    lease_seconds: float = 60.0
    flush_interval: float = 0.05
    idle_poll: float = 0.5
    # live traffic first: while live requests are being served (``Executor(live=)``) and the event loop runs
    # late by more than this (seconds), fewer lines are started (x0.75 per late tick, +concurrency/64 per
    # punctual one); None: always ``concurrency``
    max_loop_lag: float | None = 0.002


class Executor:
    def __init__(
        self,
        jobs: JobStore,
        send: Send,
        settings: ExecutorSettings | None = None,
        live: Callable[[], int] | None = None,
    ) -> None:
        """``live``: how many live requests the process is serving now (None: the batch has the loop to itself)."""
        self.jobs = jobs
        self.live = live
        self.send = send
        self.settings = settings or ExecutorSettings()
        self.owner = f"{os.getpid()}-{os.urandom(6).hex()}"
        self._results: list[LineResult] = []
        self._touched: set[str] = set()  # batches to try to finalize at the next flush
        # batches whose claims came back empty: only their results can end them. Finalizing counts the
        # batch's unfinished lines, so doing it after every flush of a 100,000-line batch cost more than the flush
        self._draining: set[str] = set()
        self._slot_freed = asyncio.Event()
        # one write transaction at a time (claims carry the results written so far): on SQLite two would meet
        # on its write lock, and the one that waits sleeps in SQLite's busy handler (1, 2, 5, 10... ms)
        self._writing = asyncio.Lock()
        self._claim_wrote = False  # a claim wrote results since the result writer's last tick
        self._active: list[str] = []  # batches with lines to claim, oldest first (re-read when exhausted)
        self._creators: dict[str, Creator | None] = {}  # of the batches in ``_active``: who their lines are charged to
        self._reread = False  # a batch was created or cancelled: re-read ``_active`` before the next claim
        self._in_flight: set[asyncio.Task[None]] = set()
        self._ready: deque[Claimed] = deque()  # claimed, waiting for a free slot (at most ``concurrency``)
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.sent = 0  # lines sent by this process (the kill test reads it)
        self._limit = self.settings.concurrency  # lines in flight allowed now (lowered while the loop runs late)

    @property
    def limit(self) -> int:
        """Lines in flight allowed now: ``concurrency``, lower while live requests wait on a late loop."""
        return self._limit

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._claim_loop(), name="llmplex-batch-claims"),
                asyncio.create_task(self._flush_loop(), name="llmplex-batch-results"),
                asyncio.create_task(self._renew_loop(), name="llmplex-batch-leases"),
            ]
            if self.settings.max_loop_lag is not None and self.live is not None:
                self._tasks.append(asyncio.create_task(self._lag_loop(), name="llmplex-batch-loop-lag"))

    def wake(self) -> None:
        """A batch was created or cancelled: look for work now instead of at the next idle poll."""
        self._reread = True
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming, drop the sends in flight, keep what finished, give back what did not.

        The loops stop at their next check rather than being cancelled: a task cancelled inside a database
        transaction could leave that connection holding SQLite's write lock for the writes below."""
        tasks, self._tasks = self._tasks, []
        self._stopping.set()
        self._wake.set()
        self._slot_freed.set()
        in_flight = list(self._in_flight)
        for task in in_flight:
            task.cancel()  # an HTTP send: closing it is safe; its line is given back below
        await asyncio.gather(*in_flight, return_exceptions=True)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=_STOP_TIMEOUT)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(StoreUnavailable):
            async with self._writing:
                await self._flush()  # what finished is kept
        with contextlib.suppress(StoreUnavailable):
            await self.jobs.release(self.owner)  # what did not runs again at once (after a kill: after the lease)

    async def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless stopping; True when stopping."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        return self._stopping.is_set()

    async def _claim_loop(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            await self._room()
            if self._stopping.is_set():
                return
            try:
                claimed = await self._claim()
                backoff = 0.1
            except Exception as exc:  # the database (StoreUnavailable) or a bug: pause, never die
                logger.warning("batch executor paused: %s", exc)
                await self._pause(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if not claimed:
                self._active = []
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.idle_poll):
                        await self._wake.wait()
                continue
            if self._stopping.is_set():
                return  # claimed while stopping: given back by stop()
            self._ready.extend(claimed)
            self._dispatch()

    @property
    def _step(self) -> int:
        """The smallest claim: half the slots (claiming a few lines per transaction would cost more in the
        database than the lines cost to send; a quarter made three claims for every two)."""
        return max(1, min(self.settings.claim_size, self.settings.concurrency // 2))

    async def _room(self) -> None:
        """Wait until a claim's worth of lines fits under ``concurrency`` lines claimed ahead of the slots.

        The slots are refilled from these as they free up, not after a claim's round trip to the database.
        That round trip is tens of milliseconds on a busy event loop (on SQLite each call waits for the GIL
        in aiosqlite's thread), and the lines started meanwhile are at most ``concurrency`` per upstream
        latency: each claim takes what the last one's round trip used up (``_claim``). With one claim of a
        quarter of the slots kept ahead, the lines ran out before the next claim came back, most of the
        time, and two thirds of the slots sat empty."""
        while len(self._ready) > self.settings.concurrency - self._step and not self._stopping.is_set():
            self._slot_freed.clear()
            await self._slot_freed.wait()

    def _dispatch(self) -> None:
        while self._ready and len(self._in_flight) < self._limit and not self._stopping.is_set():
            task = asyncio.create_task(self._run(self._ready.popleft()))
            self._in_flight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._dispatch()
        self._slot_freed.set()

    async def _claim(self) -> list[Claimed]:
        want = max(1, min(self.settings.claim_size, self.settings.concurrency - len(self._ready)))
        if not self._active or self._reread:
            self._reread = False
            fresh = await self.jobs.active_batches()
            for batch_id in self._active:
                if batch_id not in fresh:
                    # cancelled meanwhile: no claim of it comes back empty now, so it is marked here, and the
                    # result writer finalizes it once its lines in flight are written (it stayed "cancelling")
                    self._draining.add(batch_id)
                    self._touched.add(batch_id)
            self._active, self._creators = list(fresh), fresh
        async with self._writing:
            for batch_id in list(self._active):
                results, self._results = self._results, []  # written in the claim's transaction
                try:
                    claimed = await self.jobs.claim(batch_id, self.owner, want, self.settings.lease_seconds, results)
                except BaseException:
                    self._results[:0] = results  # kept for the next try
                    raise
                self._claim_wrote = self._claim_wrote or bool(results)
                if claimed:
                    creator = self._creators.get(batch_id)
                    if creator is not None:
                        for line in claimed:
                            line.creator = creator
                    return claimed
                self._active.remove(batch_id)
                # nothing left to claim (or cancelled, or expired): the result writer finalizes it once its own
                # results are written
                self._draining.add(batch_id)
                self._touched.add(batch_id)
        return []

    async def _run(self, line: Claimed) -> None:
        self.sent += 1
        status, result = await self.send(line)
        self._results.append(LineResult(line.batch_id, line.idx, status, result))
        if line.batch_id in self._draining:
            self._touched.add(line.batch_id)

    async def _flush_loop(self) -> None:
        while not await self._pause(self.settings.flush_interval):
            if self._claim_wrote and not self._touched:
                self._claim_wrote = False  # a claim wrote the results just now; the rest go at the next tick
                continue
            async with self._writing:
                # taken with the lock held, before the flush: a result written by a claim is then committed
                # before its batch is tried, and one that arrives while this writes touches the next round's
                # set (taken after, its batch would be tried before that result was written, and never again)
                touched, self._touched = self._touched, set()
                try:
                    await self._flush()
                    error: Exception | None = None
                except Exception as exc:  # kept in memory and retried; a kill loses them, and their lines rerun
                    self._touched |= touched
                    error = exc
            if error is None:
                try:
                    await self._finalize(touched)
                except Exception as exc:
                    self._touched |= touched
                    error = exc
            if error is not None:
                logger.warning("batch results not written (or batch not finalized) yet: %s", error)
                await self._pause(1.0)

    async def _flush(self) -> None:
        """Write the results (the caller holds ``_writing``)."""
        if not self._results:
            return
        results, self._results = self._results, []
        try:
            await self.jobs.finish(self.owner, results)
        except BaseException:
            self._results[:0] = results  # kept for the next try
            raise

    async def _finalize(self, touched: set[str]) -> None:
        for batch_id in touched:
            if await self.jobs.finalize(batch_id):
                self._draining.discard(batch_id)
                logger.info("batch %s ended", batch_id)

    async def _lag_loop(self) -> None:
        """Below live traffic on the event loop too: the batch's sends, answers and writes share the loop with
        live requests, and a loop kept busy by a batch delays every live request by as much as it runs late."""
        settings = self.settings
        assert settings.max_loop_lag is not None and self.live is not None
        floor, step, tick = min(4, settings.concurrency), max(1, settings.concurrency // 64), 0.01
        loop = asyncio.get_running_loop()
        last_live = -1e9
        while True:
            start = loop.time()
            if await self._pause(tick):
                return
            now = loop.time()
            if self.live():
                last_live = now
            late = now - start - tick
            if late > settings.max_loop_lag and now - last_live < 1.0:
                self._limit = max(floor, int(self._limit * 0.75))
            elif self._limit < settings.concurrency:
                self._limit = min(settings.concurrency, self._limit + step)
                self._dispatch()

    async def _renew_loop(self) -> None:
        while not await self._pause(self.settings.lease_seconds / 3):
            if self._in_flight or self._ready:
                with contextlib.suppress(StoreUnavailable):
                    await self.jobs.renew(self.owner, self.settings.lease_seconds)
