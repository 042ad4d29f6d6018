"""The waiting line (``router/admission.py``) through ``llmplex.Router`` against the emulator.

``max_parallel_requests: 1`` and a slow upstream make "every deployment is busy" without waiting for
a rate window; the emulator's ``/_emulator/arrivals`` (monotonic time of each model call) shows when
the upstream was actually called. Redis: two Routers sharing one key prefix share one limit.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from llmplex import BadRequestError, ModelResponse, Router
from llmplex.exceptions import RateLimitError
from tests.fixtures_emulator import EmulatorServer
from tests.router.test_redis_state import REDIS_URL, delete_prefix, require_redis

MESSAGES = [{"role": "user", "content": "hello line"}]


def entry(name: str, model: str, base: str, **params: Any) -> dict[str, Any]:
    params = {"model": f"openai/{model}", "api_base": base, "api_key": "k", **params}
    return {"model_name": name, "litellm_params": params}


async def arrivals(emulator: EmulatorServer, model: str) -> list[float]:
    """Monotonic times at which the emulator received calls for ``model``."""
    async with aiohttp.ClientSession() as session, session.get(emulator.url + "/_emulator/arrivals") as response:
        body = await response.json()
    return sorted(t for t, _, name in body["arrivals"] if name == model)


def unique(stem: str) -> str:
    return f"{stem}{uuid.uuid4().hex[:6]}"


async def test_a_busy_group_waits_then_succeeds(emulator: EmulatorServer) -> None:
    model = unique("q") + "-delay-150"
    async with Router(
        model_list=[entry("g", model, emulator.openai_base, max_parallel_requests=1)], num_retries=0
    ) as router:
        started = time.monotonic()
        results = await asyncio.gather(*[router.acompletion("g", MESSAGES) for _ in range(4)])
        elapsed = time.monotonic() - started
    assert all(isinstance(r, ModelResponse) for r in results)
    times = await arrivals(emulator, model)
    assert len(times) == 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.14, gaps  # one at a time: each call waited for the previous one to finish
    assert 0.55 <= elapsed < 3.0


async def test_lower_priority_first_then_fifo(emulator: EmulatorServer) -> None:
    model = unique("p") + "-delay-200"
    order: list[str] = []
    async with Router(
        model_list=[entry("g", model, emulator.openai_base, max_parallel_requests=1)], num_retries=0
    ) as router:

        async def call(name: str, priority: int | None) -> None:
            if priority is None:
                await router.acompletion("g", [{"role": "user", "content": name}])
            else:
                await router.schedule_acompletion("g", [{"role": "user", "content": name}], priority=priority)
            order.append(name)

        first = asyncio.create_task(call("first", None))  # takes the only slot
        await asyncio.sleep(0.05)
        tasks = []
        for name, priority in [("a5", 5), ("b1", 1), ("c5", 5), ("d1", 1), ("e0", 0)]:
            tasks.append(asyncio.create_task(call(name, priority)))
            await asyncio.sleep(0.01)  # arrival order is the order above
        await asyncio.gather(first, *tasks)
    assert order == ["first", "e0", "b1", "d1", "a5", "c5"]


async def test_a_full_line_answers_429_at_once(emulator: EmulatorServer) -> None:
    model = unique("f") + "-delay-600"
    async with Router(
        model_list=[entry("g", model, emulator.openai_base, max_parallel_requests=1)],
        num_retries=0,
        queue_max_length=1,
    ) as router:
        busy = asyncio.create_task(router.acompletion("g", MESSAGES))
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(router.acompletion("g", MESSAGES))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(RateLimitError) as info:
            await router.acompletion("g", MESSAGES)
        assert time.monotonic() - started < 0.1
        assert "waiting line is full" in info.value.message and info.value.retry_after == 1
        assert isinstance(await busy, ModelResponse) and isinstance(await waiting, ModelResponse)


async def test_the_wait_bound_gives_429_with_retry_after(emulator: EmulatorServer) -> None:
    model = unique("t") + "-delay-1500"
    async with Router(
        model_list=[entry("g", model, emulator.openai_base, max_parallel_requests=1)],
        num_retries=0,
        queue_timeout=0.3,
    ) as router:
        busy = asyncio.create_task(router.acompletion("g", MESSAGES))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(RateLimitError) as info:
            await router.acompletion("g", MESSAGES)
        assert 0.28 <= time.monotonic() - started < 0.8
        assert info.value.status_code == 429 and info.value.retry_after is not None and info.value.retry_after >= 1
        # the request's own timeout caps the wait below queue_timeout
        started = time.monotonic()
        with pytest.raises(RateLimitError):
            await router.acompletion("g", MESSAGES, timeout=0.1)
        assert time.monotonic() - started < 0.28
        assert isinstance(await busy, ModelResponse)
    assert len(await arrivals(emulator, model)) == 1  # the refused requests never reached the upstream


async def test_queue_timeout_zero_refuses_at_once(emulator: EmulatorServer) -> None:
    model = unique("z") + "-delay-400"
    async with Router(
        model_list=[entry("g", model, emulator.openai_base, max_parallel_requests=1)], num_retries=0, queue_timeout=0
    ) as router:
        busy = asyncio.create_task(router.acompletion("g", MESSAGES))
        await asyncio.sleep(0.05)
        with pytest.raises(RateLimitError):
            await router.acompletion("g", MESSAGES)
        await busy


async def test_a_waiter_that_is_cancelled_leaves_the_line(emulator: EmulatorServer) -> None:
    model = unique("c") + "-delay-300"
    async with Router(
        model_list=[entry("g", model, emulator.openai_base, max_parallel_requests=1)], num_retries=0
    ) as router:
        busy = asyncio.create_task(router.acompletion("g", MESSAGES))
        await asyncio.sleep(0.05)
        gone = asyncio.create_task(router.acompletion("g", MESSAGES))
        await asyncio.sleep(0.05)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        await busy
        # the slot is free again: nothing leaked
        assert isinstance(await asyncio.wait_for(router.acompletion("g", MESSAGES), 2.0), ModelResponse)
        assert router.state.in_flight(router.deployments[0]) == 0
    assert len(await arrivals(emulator, model)) == 2


async def test_bad_priority_is_a_bad_request(emulator: EmulatorServer) -> None:
    async with Router(model_list=[entry("g", "fast", emulator.openai_base)]) as router:
        with pytest.raises(BadRequestError):
            await router.schedule_acompletion("g", MESSAGES, priority="high")  # type: ignore[arg-type]
        with pytest.raises(BadRequestError):
            await router.acompletion("g", MESSAGES, priority=1.5)


@pytest.fixture
def shared_prefix() -> Iterator[str]:
    require_redis()
    prefix = f"llmplex-test-admission-{uuid.uuid4().hex[:8]}"
    yield prefix
    delete_prefix(REDIS_URL, prefix)


async def test_two_routers_sharing_redis_never_exceed_max_parallel(
    emulator: EmulatorServer, shared_prefix: str
) -> None:
    model = unique("r") + "-delay-300"
    model_list = [entry("g", model, emulator.openai_base, max_parallel_requests=2)]  # same derived model id
    routers = [
        Router(model_list=model_list, num_retries=0, redis_url=REDIS_URL, redis_key_prefix=shared_prefix)
        for _ in range(2)
    ]
    try:
        for router in routers:  # open both (state connected) before the burst
            await router.acompletion("g", MESSAGES)
        await asyncio.sleep(0.3)  # both synced: each is alive for the other's admit script
        before = len(await arrivals(emulator, model))
        calls = [router.acompletion("g", MESSAGES) for router in routers for _ in range(4)]
        results = await asyncio.gather(*calls)
    finally:
        for router in routers:
            await router.aclose()
    assert all(isinstance(r, ModelResponse) for r in results)
    times = (await arrivals(emulator, model))[before:]
    assert len(times) == 8
    # at most 2 calls at once across both routers: the third of any three arrivals came after one finished
    spans = [c - a for a, c in zip(times, times[2:], strict=False)]
    assert min(spans) >= 0.27, spans
