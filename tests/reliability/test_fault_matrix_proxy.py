"""The fault matrix through the proxy: each upstream fault becomes the right status (or one SSE error
event), retries and fallbacks apply, and nothing is left behind (tasks, upstream connections, fds, in-flight)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model
from tests.raw_upstream import Conn, Received, serve
from tests.reliability.leaks import no_leaks

MESSAGES = [{"role": "user", "content": "one two three"}]
_RUN = str(time.monotonic_ns() % 10**9)  # `times-N` counters are per exact model name


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    base = emulator.openai_base
    entries = {
        "ok": "ok",
        "slow": "slow-delay-3000",
        "limited": "lim-status-429-retryafter-2",
        "flaky": f"flaky{_RUN}-status-503-times-1",
        "primary": "primary-status-503",
        "backup": "backup",
        "broken": "broken-status-500",
        "malformed": "bad-fault-malformed",
        "truncate": "cut-fault-truncate",
        "midstream": "mid-fault-midstream",
        "reset": "rst-fault-reset",
    }
    model_list = [openai_model(name, model, base) for name, model in entries.items()]
    model_list += [
        openai_model("stallheaders", "sh-fault-stallheaders", base, timeout=0.5),
        openai_model("stall", "st-fault-stall", base, stream_idle_timeout=0.5),
        openai_model("dns", "m", "http://llmplex-test.invalid/v1"),
        openai_model("refused", "m", "http://127.0.0.1:9/v1"),  # discard port: nothing listens
    ]
    return proxy_factory(
        {
            "model_list": model_list,
            "router_settings": {"num_retries": 1, "fallbacks": [{"primary": ["backup"]}]},
        }
    )


@contextlib.asynccontextmanager
async def clean(proxy: ProxyServer, emulator: EmulatorServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with no_leaks(emulator):
        async with aiohttp.ClientSession() as http:
            yield http
        in_flight = proxy.app.state.llmplex.metrics.in_flight
        for _ in range(100):
            if in_flight._value.get() == 0:
                break
            await asyncio.sleep(0.02)
        assert in_flight._value.get() == 0


async def chat(http: aiohttp.ClientSession, proxy: ProxyServer, **body: Any) -> tuple[int, Any, bytes]:
    async with http.post(proxy.base + "/chat/completions", json={"messages": MESSAGES, **body}) as resp:
        return resp.status, resp.headers, await resp.read()


def error_of(raw: bytes) -> dict[str, Any]:
    error: dict[str, Any] = orjson.loads(raw)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


@pytest.mark.parametrize(
    ("model", "status"),
    [
        ("limited", 429),
        ("broken", 500),
        ("malformed", 502),
        ("reset", 502),
        ("stallheaders", 504),
        ("dns", 502),
        ("refused", 502),
    ],
)
async def test_upstream_fault_becomes_the_right_status(
    proxy: ProxyServer, emulator: EmulatorServer, model: str, status: int
) -> None:
    async with clean(proxy, emulator) as http:
        got, headers, raw = await chat(http, proxy, model=model)
    assert got == status, raw
    error_of(raw)
    if status == 429:
        assert headers["retry-after"] == "2"


async def test_retry_then_success_and_fallback(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    async with clean(proxy, emulator) as http:
        status, _, raw = await chat(http, proxy, model="flaky")  # 503 once, the router retries
        assert status == 200, raw
        status, headers, raw = await chat(http, proxy, model="primary")  # always 503: falls back
        assert status == 200, raw
        backup = next(d for d in proxy.config.deployments if d.model_name == "backup")
        assert headers["x-llmplex-model-id"] == backup.model_id
        assert orjson.loads(raw)["model"].startswith("backup")


async def test_garbage_upstream(proxy_factory: Any, emulator: EmulatorServer) -> None:
    async def junk(received: Received, conn: Conn) -> None:
        await conn.send(b"\x16\x03\x01\x02\x00 not HTTP\r\n\r\n")

    async with serve(junk) as upstream:
        junk_proxy = proxy_factory({"model_list": [openai_model("junk", "m", upstream.openai_base)]})
        async with clean(junk_proxy, emulator) as http:
            status, _, raw = await chat(http, junk_proxy, model="junk")
    assert status == 502
    error_of(raw)


async def test_json_that_is_not_a_completion_is_a_502(proxy_factory: Any, emulator: EmulatorServer) -> None:
    async def wrong_shape(received: Received, conn: Conn) -> None:
        await conn.respond(200, {"id": "x", "created": 1, "choices": [{"index": 0, "text": "legacy"}]})

    async with serve(wrong_shape) as upstream:
        odd_proxy = proxy_factory({"model_list": [openai_model("odd", "m", upstream.openai_base)]})
        async with clean(odd_proxy, emulator) as http:
            status, _, raw = await chat(http, odd_proxy, model="odd")
    assert status == 502
    assert "not a chat completion (choices.0.message: Field required)" in error_of(raw)["message"]


@pytest.mark.parametrize("model", ["malformed", "truncate", "midstream", "stall", "reset"])
async def test_broken_stream_ends_with_one_error_event(
    proxy: ProxyServer, emulator: EmulatorServer, model: str
) -> None:
    async with clean(proxy, emulator) as http:
        status, _, raw = await chat(http, proxy, model=model, stream=True)
    assert status == 200  # the stream had started
    events = [line[6:] for line in raw.split(b"\n") if line.startswith(b"data: ")]
    assert events[-1] != b"[DONE]"  # never a silent short answer
    error = orjson.loads(events[-1])["error"]
    assert error["message"] and error["type"]


async def test_stall_before_headers_in_a_stream_is_504(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    async with clean(proxy, emulator) as http:
        status, _, raw = await chat(http, proxy, model="stallheaders", stream=True)
    assert status == 504
    error_of(raw)


async def test_race_fast_failure_never_wins_losers_closed(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    async with clean(proxy, emulator) as http:
        before = await emulator.astats()
        status, headers, _ = await chat(http, proxy, model=["broken", "ok", "slow"], fastest_response=True)
        assert status == 200 and headers["x-llmplex-model"] == "ok"
        await emulator.wait_for(lambda s: s["disconnected"] > before["disconnected"])  # "slow" was closed
        status, headers, raw = await chat(http, proxy, model=["broken", "ok"], fastest_response=True, stream=True)
        assert status == 200 and headers["x-llmplex-model"] == "ok" and raw.rstrip().endswith(b"data: [DONE]")


async def test_race_all_failures(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    async with clean(proxy, emulator) as http:
        status, _, raw = await chat(http, proxy, model=["broken", "malformed", "refused"], fastest_response=True)
    assert status in (500, 502)
    message = error_of(raw)["message"]
    assert "All 3 models failed" in message
    assert all(name in message for name in ("broken", "malformed", "refused"))
