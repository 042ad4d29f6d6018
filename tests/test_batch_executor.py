"""The batch executor on a real database (SQLite file, PostgreSQL) with the emulator as upstream."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from llmplex import AsyncClient
from llmplex.batches.executor import Executor, ExecutorSettings, Send
from llmplex.batches.jobstore import Claimed, JobStore, LineResult
from llmplex.batches.tables import DONE, batch_lines
from llmplex.exceptions import APIError
from llmplex.store import Store


def emulator_send(client: AsyncClient, emulator: Any) -> Send:
    async def send(line: Claimed) -> tuple[int, str]:
        request = orjson.loads(line.body)
        model, messages = request.pop("model"), request.pop("messages")
        try:
            response = await client.completion(
                f"openai/{model}", messages, api_base=emulator.openai_base, api_key="k", **request
            )
        except APIError as exc:
            return exc.status_code or 500, orjson.dumps({"error": {"message": exc.message}}).decode()
        return 200, response.wire_bytes().decode()  # type: ignore[union-attr]

    return send


async def _once(lines: list[tuple[int, str, str]]) -> Any:
    yield lines


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


async def _new_batch(jobs: JobStore, batch_id: str, n: int, model: str = "m") -> None:
    now = time.time()
    row = {
        "id": batch_id,
        "status": "in_progress",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "file-x",
        "completion_window": "24h",
        "metadata": None,
        "total": n,
        "created_at": now,
        "in_progress_at": now,
        "expires_at": now + 86400,
    }
    lines = [
        (
            i,
            f"c{i}",
            orjson.dumps({"model": "m-status-400" if i == 3 else model, "messages": [_user(f"q{i}")]}).decode(),
        )
        for i in range(n)
    ]
    await jobs.create_batch(row, _once(lines))


async def _until_ended(jobs: JobStore, batch_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        batch = await jobs.get_batch(batch_id)
        assert batch is not None
        if batch["status"] in ("completed", "cancelled", "expired"):
            return batch
        assert time.monotonic() < deadline, batch
        await asyncio.sleep(0.05)


async def test_executor_runs_every_line_once(db_url: str, client: AsyncClient, emulator: Any) -> None:
    store = Store(db_url)
    await store.open()
    try:
        jobs = JobStore(store)
        await _new_batch(jobs, "batch_a", 300)
        executor = Executor(jobs, emulator_send(client, emulator), ExecutorSettings(concurrency=32, claim_size=64))
        executor.start()
        try:
            batch = await _until_ended(jobs, "batch_a")
        finally:
            await executor.stop()
        assert batch["status"] == "completed" and (batch["completed"], batch["failed"]) == (299, 1)
        assert batch["output_file_id"] and batch["error_file_id"]
        assert executor.sent == 300
        ok = [row for page in [p async for p in jobs.result_pages("batch_a", False, False)] for row in page]
        assert [row[0] for row in ok] == [i for i in range(300) if i != 3]
        assert orjson.loads(ok[0][3])["choices"][0]["message"]["content"] == "Echo: q0"
        async with store.read() as conn:
            states = {r[0] for r in await conn.execute(batch_lines.select().with_only_columns(batch_lines.c.state))}
        assert states == {DONE}
    finally:
        await store.close()


async def test_two_executors_share_one_batch(db_url: str, client: AsyncClient, emulator: Any) -> None:
    store_a, store_b = Store(db_url), Store(db_url)
    await store_a.open()
    await store_b.open()
    try:
        await _new_batch(JobStore(store_a), "batch_b", 400, model="m-delay-5")
        settings = ExecutorSettings(concurrency=16, claim_size=16)
        first = Executor(JobStore(store_a), emulator_send(client, emulator), settings)
        second = Executor(JobStore(store_b), emulator_send(client, emulator), settings)
        first.start()
        second.start()
        try:
            batch = await _until_ended(JobStore(store_a), "batch_b")
        finally:
            await first.stop()
            await second.stop()
        assert (batch["completed"], batch["failed"]) == (399, 1)
        assert first.sent + second.sent == 400  # no lease ran out: nothing was sent twice
        assert first.sent > 0 and second.sent > 0
    finally:
        await store_a.close()
        await store_b.close()


@pytest.mark.parametrize("lease", [0.3])
async def test_a_dead_claim_returns_after_its_lease(
    db_url: str, client: AsyncClient, emulator: Any, lease: float
) -> None:
    store = Store(db_url)
    await store.open()
    try:
        jobs = JobStore(store)
        await _new_batch(jobs, "batch_c", 20)
        lost = await jobs.claim("batch_c", "dead-process", 5, lease)  # claimed, then its process "died"
        assert [c.idx for c in lost] == [0, 1, 2, 3, 4]
        executor = Executor(jobs, emulator_send(client, emulator), ExecutorSettings(lease_seconds=lease))
        executor.start()
        try:
            batch = await _until_ended(jobs, "batch_c")
        finally:
            await executor.stop()
        assert (batch["completed"], batch["failed"]) == (19, 1)
    finally:
        await store.close()


async def test_a_claim_takes_expired_then_pending_lines_and_writes_only_its_own_results(db_url: str) -> None:
    """One claim: the lines whose lease ran out and the pending ones, first by line index, and the results
    handed to it written in the same transaction, only for lines whose lease the writer holds."""
    store = Store(db_url)
    await store.open()
    try:
        jobs = JobStore(store)
        await _new_batch(jobs, "batch_k", 10)
        dead = await jobs.claim("batch_k", "dead", 2, 0.05)
        held = await jobs.claim("batch_k", "alive", 2, 600)
        assert ([c.idx for c in dead], [c.idx for c in held]) == ([0, 1], [2, 3])
        await asyncio.sleep(0.1)  # the dead one's lease runs out
        taken = await jobs.claim("batch_k", "b", 3, 600, [LineResult("batch_k", 2, 200, '{"stolen": true}')])
        assert [c.idx for c in taken] == [0, 1, 4]
        assert (await jobs.get_batch("batch_k") or {})["completed"] == 0  # line 2 is alive's: b's answer dropped
        answers = [LineResult("batch_k", i, 200, f'{{"n": {i}}}') for i in (2, 3)]
        assert [c.idx for c in await jobs.claim("batch_k", "alive", 2, 600, answers)] == [5, 6]
        late = await jobs.claim("batch_k", "dead", 5, 600, [LineResult("batch_k", 0, 200, '{"late": true}')])
        assert [c.idx for c in late] == [7, 8, 9]  # 0 and 1 are b's now, and the dead one's answer is dropped
        async with store.read() as conn:
            done = (
                await conn.execute(
                    select(batch_lines.c.idx, batch_lines.c.result)
                    .where(batch_lines.c.state == DONE)
                    .order_by(batch_lines.c.idx)
                )
            ).all()
        assert [tuple(r) for r in done] == [(2, '{"n": 2}'), (3, '{"n": 3}')]
    finally:
        await store.close()


async def test_a_batch_cancelled_with_lines_in_flight_ends_cancelled(sqlite_url: str) -> None:
    """Cancelled (then ``wake()``, as the route does) while a line is sent and one waits for the slot: once they
    are written the batch is ``cancelled``. It stayed ``cancelling``: no claim of it came back empty to mark it."""
    store = Store(sqlite_url)
    await store.open()
    try:
        jobs = JobStore(store)
        await _new_batch(jobs, "batch_x", 20)

        async def send(line: Claimed) -> tuple[int, str]:
            await asyncio.sleep(0.2)
            return 200, "{}"

        executor = Executor(jobs, send, ExecutorSettings(concurrency=1))
        executor.start()
        try:
            deadline = time.monotonic() + 10
            while executor.sent < 1:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            assert await jobs.cancel("batch_x")
            executor.wake()
            batch = await _until_ended(jobs, "batch_x", timeout=10)
        finally:
            await executor.stop()
        assert batch["status"] == "cancelled" and 1 <= batch["completed"] < 20
    finally:
        await store.close()


async def test_a_clean_stop_gives_its_claims_back(sqlite_url: str, client: AsyncClient, emulator: Any) -> None:
    store = Store(sqlite_url)
    await store.open()
    try:
        jobs = JobStore(store)
        await _new_batch(jobs, "batch_d", 40, model="m-delay-300")
        executor = Executor(jobs, emulator_send(client, emulator), ExecutorSettings(concurrency=4, lease_seconds=600))
        executor.start()
        deadline = time.monotonic() + 10
        while executor.sent < 4:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await executor.stop()
        async with store.read() as conn:
            rows = (await conn.execute(batch_lines.select().where(batch_lines.c.state == 1))).all()
        assert rows == []  # nothing waits for a 600 s lease: the next start takes them at once
        again = Executor(jobs, emulator_send(client, emulator), ExecutorSettings(concurrency=40))
        again.start()
        try:
            batch = await _until_ended(jobs, "batch_d")
        finally:
            await again.stop()
        assert (batch["completed"], batch["failed"]) == (39, 1)
    finally:
        await store.close()


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.parametrize("live", [0, 1])
async def test_executor_yields_the_loop_to_live_requests(tmp_path: Any, live: int) -> None:
    """A send that holds the event loop (a saturated core): with live requests being served the executor
    lowers the lines in flight it allows; with none it keeps its full concurrency."""
    store = Store(f"sqlite:///{tmp_path / 'lag.db'}")
    await store.open()
    try:
        jobs = JobStore(store)
        await _new_batch(jobs, "batch_lag", 2000)
        samples: list[int] = []

        async def send(line: Claimed) -> tuple[int, str]:
            samples.append(executor.limit)
            # CPU on the loop: 64 ms per 50 ms round with 64 in flight, a saturated core (at 0.5 ms the sends,
            # started as slots free rather than in claim-sized bursts, left the loop late only now and then)
            _busy(0.001)
            await asyncio.sleep(0.05)
            return 200, "{}"

        settings = ExecutorSettings(concurrency=64, claim_size=64)
        executor = Executor(jobs, send, settings, live=lambda: live)
        executor.start()
        try:
            batch = await _until_ended(jobs, "batch_lag", timeout=60)
        finally:
            await executor.stop()
        assert batch["status"] == "completed" and batch["completed"] == 2000
        if live:
            assert min(samples) <= 32, min(samples)
        else:
            assert set(samples) == {64}
    finally:
        await store.close()
