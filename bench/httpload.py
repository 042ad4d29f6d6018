"""Python HTTP clients for what wrk does not measure: latency at concurrency 1, time to first token,
many concurrent slow streams; and the fallback closed-loop load generator. Run on the load core; aiohttp,
except for the slow streams (``bench.sse_client``).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp
import orjson

from bench.sse_client import SSEClient, StreamResult
from bench.stats import percentile

T = TypeVar("T")


def run_client(coro: Coroutine[Any, Any, T]) -> T:
    """Run a client coroutine on uvloop when installed: the client shares core 0, so keep it cheap."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


async def run_capped(
    coros: list[Coroutine[Any, Any, T]], cap: float
) -> tuple[set[asyncio.Task[T]], set[asyncio.Task[T]], float]:
    """Run ``coros`` concurrently for at most ``cap`` seconds: (finished tasks, tasks cancelled at the cap,
    wall seconds). Cancelled tasks have finished cancelling when this returns."""
    t0 = time.perf_counter()
    tasks = [asyncio.ensure_future(coro) for coro in coros]
    done, pending = await asyncio.wait(tasks, timeout=cap)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return done, pending, time.perf_counter() - t0


def _session(limit: int = 100) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit), timeout=aiohttp.ClientTimeout(total=60))


async def sequential_latency(
    url: str, body: dict[str, Any], headers: dict[str, str], n: int, warmup: int
) -> dict[str, Any]:
    """Latency (ms) of ``n`` requests one at a time after ``warmup`` excluded ones."""
    latencies: list[float] = []
    errors = 0
    async with _session(1) as session:
        for i in range(warmup + n):
            t0 = time.perf_counter()
            async with session.post(url, json=body, headers=headers) as resp:
                await resp.read()
                ok = resp.status == 200
            if i >= warmup:
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += not ok
    return {"latencies_ms": latencies, "errors": errors}


async def first_token(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[float, list[float], bool]:
    """One stream: (ms to the first content event, arrival times of data events, ended with [DONE])."""
    t0 = time.perf_counter()
    ttft = -1.0
    arrivals: list[float] = []
    done = False
    async with session.post(url, json=body, headers=headers) as resp:
        if resp.status != 200:
            await resp.read()
            return ttft, arrivals, False
        async for chunk in resp.content.iter_any():
            now = time.perf_counter()
            events = chunk.count(b"data:")
            if events and ttft < 0 and b'"content"' in chunk:
                ttft = (now - t0) * 1000
            arrivals.extend([now] * events)
            done = done or b"[DONE]" in chunk
    return ttft, arrivals, done


async def stream_ttft(url: str, body: dict[str, Any], headers: dict[str, str], n: int, warmup: int) -> dict[str, Any]:
    ttfts: list[float] = []
    errors = 0
    async with _session(1) as session:
        for i in range(warmup + n):
            ttft, _, done = await first_token(session, url, body, headers)
            if i >= warmup:
                if ttft < 0 or not done:
                    errors += 1
                else:
                    ttfts.append(ttft)
    return {"ttft_ms": ttfts, "errors": errors}


async def slow_streams(
    url: str, body: dict[str, Any], headers: dict[str, str], streams: int, timeout: float, ramp: float = 0.5
) -> dict[str, Any]:
    """``streams`` concurrent streams opened evenly over ``ramp`` seconds (500 handshakes in one instant would
    measure the accept queue, not streaming); the largest gap between data events inside any one stream.
    The client is ``SSEClient`` (bare protocol, C parser): with aiohttp the client alone kept its core busy."""
    client = SSEClient(url, orjson.dumps(body), headers)

    async def staggered(i: int) -> StreamResult:
        await asyncio.sleep(ramp * i / streams)
        return await client.stream()

    # the client is the measuring instrument: a garbage-collection pause in it would show up as a gap in
    # every stream, whichever target it measures (a few seconds of allocations fit in memory easily)
    gc.collect()
    gc.disable()
    try:
        done, pending, wall = await run_capped([staggered(i) for i in range(streams)], timeout)
    finally:
        gc.enable()
    gaps: list[float] = []
    ttfts: list[float] = []  # per stream: request sent -> first content, while the others stream
    completed = errors = 0
    for task in done:
        if task.exception() is not None:
            errors += 1
            continue
        result = task.result()
        finished = result.done and result.status == 200
        completed += finished
        errors += not finished
        gaps.extend((b - a) * 1000 for a, b in itertools.pairwise(result.arrivals))
        if result.ttft >= 0:
            ttfts.append(result.ttft)
    return {
        "streams": streams,
        "completed": completed,
        "errors": errors,
        "unfinished": len(pending),
        "wall_s": wall,
        "max_gap_ms": max(gaps) if gaps else None,
        "p99_gap_ms": percentile(gaps, 99) if gaps else None,
        "gaps_over_100ms": sum(1 for g in gaps if g > 100),
        "ttft_p50_ms": percentile(ttfts, 50) if ttfts else None,
        "ttft_p99_ms": percentile(ttfts, 99) if ttfts else None,
    }


async def closed_loop(
    url: str, body: dict[str, Any], headers: dict[str, str], connections: int, seconds: float, limit: int
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline and (not limit or len(latencies) < limit):
            t0 = time.perf_counter()
            try:
                async with session.post(url, json=body, headers=headers) as resp:
                    await resp.read()
                    errors += resp.status != 200
            except aiohttp.ClientError:
                errors += 1
            latencies.append((time.perf_counter() - t0) * 1000)

    async with _session(connections) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        duration = time.perf_counter() - t0
    return {
        "requests": len(latencies),
        "duration_s": duration,
        "rps": len(latencies) / duration,
        "p50_us": percentile(latencies, 50) * 1000,
        "p90_us": percentile(latencies, 90) * 1000,
        "p99_us": percentile(latencies, 99) * 1000,
        "max_us": max(latencies, default=0) * 1000,
        "errors": errors,
    }
