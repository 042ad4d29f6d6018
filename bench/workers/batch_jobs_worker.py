"""One measured run of the batch-jobs scenario, in its own process: ``python -m bench.workers.batch_jobs_worker ARGS``.

ARGS is JSON: ``{"mode": "executor" | "sdk", "n", "concurrency", "model", "api_base", "api_key", "db"}``
(``db``: a SQLite file path or a ``postgresql://`` URL).
``executor``: the proxy's batch executor on a SQLite file (lines inserted first, not timed; then timed from
start to the batch's end). ``sdk``: ``batch_completion`` of the same prompts. Prints one JSON line:
wall seconds, lines, failures, CPU seconds and the process's peak RSS.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

import orjson


def _prompts(n: int) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"prompt number {i} of the batch"}] for i in range(n)]


async def _executor(args: dict[str, Any]) -> dict[str, Any]:
    from llmplex import AsyncClient
    from llmplex.batches.executor import Executor, ExecutorSettings
    from llmplex.batches.jobstore import Claimed, JobStore
    from llmplex.store import Store

    n, model = args["n"], args["model"]
    db = args["db"]
    store = Store(db if "://" in db else f"sqlite:///{db}")
    await store.open()
    jobs = JobStore(store)
    now = time.time()
    row = {
        "id": "batch_bench",
        "status": "in_progress",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "file-bench",
        "completion_window": "24h",
        "metadata": None,
        "total": n,
        "created_at": now,
        "in_progress_at": now,
        "expires_at": now + 86400,
    }

    async def chunks() -> Any:
        for start in range(0, n, 2000):
            end = min(start + 2000, n)
            yield [
                (start + i, f"r{start + i}", orjson.dumps({"model": model, "messages": prompt}).decode())
                for i, prompt in enumerate(_prompts(end - start))
            ]

    t_insert = time.perf_counter()
    await jobs.create_batch(row, chunks())
    insert_s = time.perf_counter() - t_insert
    async with AsyncClient(num_retries=0, max_connections=args["concurrency"]) as client:

        async def send(line: Claimed) -> tuple[int, str]:
            request = orjson.loads(line.body)
            try:
                response = await client.completion(
                    "openai/" + request["model"],
                    request["messages"],
                    api_base=args["api_base"],
                    api_key=args["api_key"],
                )
            except Exception as exc:
                return 500, orjson.dumps({"error": {"message": str(exc)}}).decode()
            return 200, response.wire_bytes().decode()  # type: ignore[union-attr]

        executor = Executor(jobs, send, ExecutorSettings(concurrency=args["concurrency"], claim_size=1000))
        cpu0, t0 = time.process_time(), time.perf_counter()
        executor.start()
        while True:
            # the status alone: get_batch counts the batch's lines, which a poll every 0.25 s of a
            # 100,000-line batch would charge to the executor (the harness is not what is measured)
            await asyncio.sleep(0.25)
            if await _status(store, "batch_bench") == "completed":
                break
        wall = time.perf_counter() - t0
        batch = await jobs.get_batch("batch_bench")
        assert batch is not None
        cpu = time.process_time() - cpu0
        await executor.stop()
    await store.close()
    return {
        "wall_s": wall,
        "insert_s": insert_s,
        "n": n,
        "ok": batch["completed"],
        "failed": batch["failed"],
        "cpu_s": cpu,
    }


async def _status(store: Any, batch_id: str) -> str:
    from sqlalchemy import select

    from llmplex.batches.tables import batches

    async with store.read() as conn:
        return str((await conn.execute(select(batches.c.status).where(batches.c.id == batch_id))).scalar_one())


async def _sdk(args: dict[str, Any]) -> dict[str, Any]:
    from llmplex import AsyncClient

    n = args["n"]
    async with AsyncClient(num_retries=0, max_connections=args["concurrency"]) as client:
        cpu0, t0 = time.process_time(), time.perf_counter()
        results = await client.batch_completion(
            "openai/" + args["model"],
            _prompts(n),
            max_concurrency=args["concurrency"],
            api_base=args["api_base"],
            api_key=args["api_key"],
        )
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    failed = sum(isinstance(r, Exception) for r in results)
    return {"wall_s": wall, "n": n, "ok": n - failed, "failed": failed, "cpu_s": cpu}


def main() -> None:
    args = json.loads(sys.argv[1])
    out = asyncio.run(_executor(args) if args["mode"] == "executor" else _sdk(args))
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
