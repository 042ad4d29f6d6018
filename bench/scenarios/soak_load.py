"""The mixed faulted load of the soak scenario: many aiohttp clients, each request classified by its outcome."""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.httpload import run_capped
from bench.proxies import MODEL, chat_body
from bench.stats import percentile

FAULTY_MODEL = "bench-faulty"
REQUEST_TIMEOUT = 30.0  # a request without a complete answer by then counts as hung
EXPECTED_STATUS = 503
SAMPLES = 5


@dataclass
class Tally:
    sent: int = 0
    faulty_sent: int = 0
    successes: int = 0
    expected_errors: int = 0
    unexpected: int = 0
    lost: int = 0
    hung: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)

    def odd(self, what: str) -> None:
        self.unexpected += 1
        if len(self.samples) < SAMPLES:
            self.samples.append(what[:200])


def _openai_error(body: bytes) -> bool:
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(error, dict) and isinstance(error.get("message"), str) and isinstance(error.get("type"), str)


async def _one(session: aiohttp.ClientSession, url: str, headers: dict[str, str], faulty: bool, stream: bool) -> str:
    """'ok', 'expected', 'lost', or a description of what was unexpected."""
    body = chat_body(FAULTY_MODEL if faulty else MODEL, stream)
    async with session.post(url, json=body, headers=headers) as resp:
        data = await resp.read()
        if faulty:
            if resp.status == EXPECTED_STATUS and _openai_error(data):
                return "expected"
            return f"faulty {'stream' if stream else 'call'}: {resp.status} {data[:80]!r}"
        if resp.status != 200:
            return f"healthy {'stream' if stream else 'call'}: {resp.status} {data[:80]!r}"
        if not stream:
            return "ok" if b'"choices"' in data else f"healthy call without choices: {data[:80]!r}"
        if b'"error"' in data:
            return f"healthy stream with an error event: {data[-120:]!r}"
        return "ok" if data.rstrip().endswith(b"data: [DONE]") else "lost"


async def mixed_load(
    url: str,
    headers: dict[str, str],
    *,
    requests: int,
    clients: int,
    fault_share: float,
    stream_share: float,
    time_cap: float,
) -> dict[str, Any]:
    """``requests`` requests over ``clients`` closed-loop clients; stops early at ``time_cap`` seconds."""
    rng = random.Random(6)  # the same mix every run
    plan = [(rng.random() < fault_share, rng.random() < stream_share) for _ in range(requests)]
    tally = Tally()
    queue = iter(plan)

    deadline = time.perf_counter() + time_cap

    async def client(session: aiohttp.ClientSession) -> None:
        for faulty, stream in queue:
            # the cap also holds when a cancellation is lost: Python 3.11's wait_for drops one that arrives
            # as the request completes, and the client would then run the rest of the plan
            if time.perf_counter() >= deadline:
                return
            tally.sent += 1
            tally.faulty_sent += faulty
            t0 = time.perf_counter()
            try:
                outcome = await asyncio.wait_for(_one(session, url, headers, faulty, stream), REQUEST_TIMEOUT)
            except TimeoutError:
                tally.hung += 1
                continue
            except aiohttp.ClientError:
                tally.lost += 1
                continue
            tally.latencies_ms.append((time.perf_counter() - t0) * 1000)
            if outcome == "ok":
                tally.successes += 1
            elif outcome == "expected":
                tally.expected_errors += 1
            elif outcome == "lost":
                tally.lost += 1
            else:
                tally.odd(outcome)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
        _, _, wall = await run_capped([client(session) for _ in range(clients)], time_cap)
    # a request still open at the cap was sent but never answered
    answered = tally.successes + tally.expected_errors + tally.unexpected + tally.lost + tally.hung
    tally.hung += tally.sent - answered
    lat = tally.latencies_ms
    return {
        "sent": tally.sent,
        "faulty_sent": tally.faulty_sent,
        "successes": tally.successes,
        "expected_errors": tally.expected_errors,
        "unexpected": tally.unexpected,
        "unexpected_samples": tally.samples,
        "lost": tally.lost,
        "hung": tally.hung,
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "wall_s": wall,
        "time_cap_s": time_cap,
    }
