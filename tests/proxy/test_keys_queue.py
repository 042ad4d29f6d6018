"""A virtual key over its rpm / tpm / parallel limit (or its user's, its team's) waits in line instead of
answering 429 at once: through a real proxy (uvicorn on loopback) on SQLite, the emulator upstream, the
openai SDK and aiohttp as clients. The two-replica Redis case is in ``test_keys_replicas``.

Key windows are aligned on the wall clock (``time.time()``), as the emulator's arrival times (column 1).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer
from tests.proxy.keys_support import MASTER, MESSAGES, call, early_in_a_wall_window
from tests.proxy.test_queue import arrivals

Factory = Callable[[Any], ProxyServer]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def queue_config(
    emulator: EmulatorServer, tmp_path: Path, model: str, window: float, router: dict[str, Any]
) -> dict[str, Any]:
    params = {"model": f"openai/{model}", "api_base": emulator.openai_base, "api_key": "k"}
    return {
        "model_list": [{"model_name": "g", "litellm_params": params}],
        "general_settings": {"master_key": MASTER, "database_url": f"sqlite:///{tmp_path / 'keys.db'}"},
        "router_settings": router,
        "llmplex_settings": {"rate_limit_window_seconds": window},
    }


async def ask(
    http: aiohttp.ClientSession, url: str, key: str, **extra: Any
) -> tuple[int, dict[str, Any], dict[str, str], float]:
    started = time.monotonic()
    body = {"model": "g", "messages": MESSAGES, **extra}
    async with http.post(url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}) as resp:
        answer = await resp.json(content_type=None)
        headers = {name.lower(): value for name, value in resp.headers.items()}
        return resp.status, answer, headers, time.monotonic() - started


async def test_over_rpm_waits_for_the_next_window(
    emulator: EmulatorServer, proxy_factory: Factory, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    model = f"kq{uuid.uuid4().hex[:6]}"
    proxy = proxy_factory(queue_config(emulator, tmp_path, model, 0.5, {"queue_timeout": 5}))
    _, made, _ = await call(http, proxy.url, "/key/generate", {"rpm_limit": 2})
    client = openai.AsyncOpenAI(base_url=proxy.base, api_key=made["key"], max_retries=0)
    results = await asyncio.gather(*[client.chat.completions.create(model="g", messages=MESSAGES) for _ in range(6)])
    await client.close()
    assert [r.choices[0].message.content for r in results] == ["Echo: hello keys"] * 6
    times = await arrivals(emulator, model, clock=1)
    windows = Counter(int(t // 0.5) for t in times)
    assert len(times) == 6 and max(windows.values()) <= 2  # the upstream never saw more than the key's limit
    assert len(windows) >= 3  # spread over three windows: the later ones waited


async def test_the_bound_answers_litellms_429_with_retry_after(
    emulator: EmulatorServer, proxy_factory: Factory, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    model = f"kb{uuid.uuid4().hex[:6]}"
    proxy = proxy_factory(queue_config(emulator, tmp_path, model, 20.0, {"queue_timeout": 0.3}))
    _, made, _ = await call(http, proxy.url, "/key/generate", {"rpm_limit": 1})
    await call(http, proxy.url, "/team/new", {"team_id": "tight", "rpm_limit": 1})
    _, teamed, _ = await call(http, proxy.url, "/key/generate", {"team_id": "tight", "rpm_limit": 50})
    await early_in_a_wall_window(20.0, 5.0)  # the waiting requests must time out, not meet the next window
    for key, who in ((made["key"], "api_key"), (teamed["key"], "team")):  # the key's own limit; its team's
        assert (await ask(http, proxy.url, key))[0] == 200
        status, body, headers, waited = await ask(http, proxy.url, key)
        assert status == 429 and 0.28 <= waited < 2.0, (status, waited)
        assert 1 <= int(headers["retry-after"]) <= 20
        message = body["error"]["message"]
        assert message.startswith(f"Rate limit exceeded for {who}: ") and "Limit type: requests" in message
    assert len(await arrivals(emulator, model)) == 2


async def test_parallel_slot_goes_to_the_lower_priority_first(
    emulator: EmulatorServer, proxy_factory: Factory, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    model = f"kp{uuid.uuid4().hex[:6]}-delay-300"
    proxy = proxy_factory(queue_config(emulator, tmp_path, model, 60.0, {"queue_timeout": 5}))
    _, made, _ = await call(http, proxy.url, "/key/generate", {"max_parallel_requests": 1})
    key = made["key"]
    first = asyncio.create_task(ask(http, proxy.url, key))
    await asyncio.sleep(0.1)  # the slot is taken
    late = asyncio.create_task(ask(http, proxy.url, key, priority=5))
    await asyncio.sleep(0.05)
    urgent = asyncio.create_task(ask(http, proxy.url, key, priority=0))
    results = await asyncio.gather(first, late, urgent)
    assert [r[0] for r in results] == [200, 200, 200]  # they waited for the slot instead of a 429
    _, (_, _, _, late_s), (_, _, _, urgent_s) = results
    assert urgent_s < late_s - 0.2  # came later, served first: its priority is lower
    times = await arrivals(emulator, model)
    assert len(times) == 3 and all(b - a >= 0.28 for a, b in itertools.pairwise(times))  # one at a time


async def test_a_full_line_answers_429_at_once_and_tpm_waits_too(
    emulator: EmulatorServer, proxy_factory: Factory, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    model = f"kl{uuid.uuid4().hex[:6]}"
    router = {"queue_timeout": 2, "queue_max_length": 1}
    proxy = proxy_factory(queue_config(emulator, tmp_path, model, 20.0, router))
    _, made, _ = await call(http, proxy.url, "/key/generate", {"rpm_limit": 1})
    await early_in_a_wall_window(20.0, 5.0)
    results = await asyncio.gather(*(ask(http, proxy.url, made["key"]) for _ in range(4)))
    statuses = sorted((r[0], round(r[3])) for r in results)
    assert statuses == [(200, 0), (429, 0), (429, 0), (429, 2)], statuses  # one waited its bound; two found it full
    assert all(int(r[2]["retry-after"]) >= 1 for r in results if r[0] == 429)

    _, thrifty, _ = await call(http, proxy.url, "/key/generate", {"tpm_limit": 5})
    assert (await ask(http, proxy.url, thrifty["key"]))[0] == 200  # admitted with 0 tokens; uses more than 5
    status, body, _, waited = await ask(
        http, proxy.url, thrifty["key"], timeout=1
    )  # the request's own timeout caps the wait
    assert status == 429 and "Limit type: tokens" in body["error"]["message"] and 0.98 <= waited < 1.6, body
    status, body = (await ask(http, proxy.url, thrifty["key"], priority="high"))[:2]
    assert status == 400 and body["error"]["param"] == "priority"
