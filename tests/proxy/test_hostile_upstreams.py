"""The proxy in front of hostile upstreams (issue 17): what reaches its clients carries no provider key."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any

import aiohttp
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model
from tests.raw_upstream import Conn, RawUpstream, Received, serve_in_thread

MESSAGES = [{"role": "user", "content": "hello"}]
KEY = "test-key"  # openai_model's deployment key


OTHER_KEY = "sk-other-deployment-0123456789"  # a second deployment's key, which the leaky upstream knows

RETRY_AFTERS = {"nan": {"retry-after": "nan"}, "huge": {"retry-after": "1e300"}, "inf-ms": {"retry-after-ms": "1e400"}}


@pytest.fixture(scope="module")
def limited() -> Iterator[RawUpstream]:
    """429s whose retry-after is absurd; the model name (after the deployment prefix) picks which."""

    async def handler(req: Received, conn: Conn) -> None:
        if req.json()["model"] == "leak":  # an upstream whose error text carries another deployment's key
            await conn.respond(400, {"error": {"message": f"bad request; key {OTHER_KEY} is also invalid"}}, {})
            return
        headers = RETRY_AFTERS[req.json()["model"]]
        await conn.respond(429, {"error": {"message": "slow down", "type": "rate_limit_error"}}, headers)

    with serve_in_thread(handler) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer, limited: RawUpstream) -> ProxyServer:
    host = emulator.url.removeprefix("http://")
    absurd = [openai_model(f"retry-{name}", name, limited.openai_base) for name in RETRY_AFTERS]
    return proxy_factory(
        {
            "model_list": [
                openai_model("redirect", "m-fault-redirect", emulator.openai_base),
                openai_model("echo", "m-fault-echokey", emulator.openai_base),
                openai_model("huge", "m-fault-hugebody", emulator.openai_base),
                *absurd,
                openai_model("leak", "leak", limited.openai_base),
                {
                    "model_name": "other",
                    "litellm_params": {"model": "openai/m", "api_base": emulator.openai_base, "api_key": OTHER_KEY},
                },
                {
                    "model_name": "userinfo",
                    "litellm_params": {
                        "model": "anthropic/claude-3-5-sonnet",
                        "api_base": f"http://admin:s3cr3t-pw@{host}",
                        "api_key": KEY,
                    },
                },
            ],
            "litellm_settings": {"num_retries": 0},
            "llmplex_settings": {"max_response_bytes": 4 * 1024 * 1024},
        }
    )


async def post(proxy: ProxyServer, model: str) -> tuple[int, bytes, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http,
        http.post(proxy.base + "/chat/completions", json={"model": model, "messages": MESSAGES}) as resp,
    ):
        return resp.status, await resp.read(), resp.headers


async def test_a_redirect_is_a_502_and_nothing_follows_it(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    status, body, _ = await post(proxy, "redirect")
    assert status == 502 and b"307" in body and KEY.encode() not in body
    stats = await emulator.astats()
    assert stats["redirected"] == 0 and stats["redirected_with_key"] == 0


async def test_an_echoed_key_is_redacted(proxy: ProxyServer) -> None:
    status, body, _ = await post(proxy, "echo")
    assert status == 401 and b"Incorrect API key" in body
    assert KEY.encode() not in body


async def test_another_deployments_key_in_an_upstream_error_is_redacted(proxy: ProxyServer) -> None:
    status, body, _ = await post(proxy, "leak")
    assert status == 400 and b"is also invalid" in body
    assert OTHER_KEY.encode() not in body


async def test_a_huge_body_is_a_502(proxy: ProxyServer) -> None:
    status, body, _ = await post(proxy, "huge")
    assert status == 502 and b"exceeds 4194304 bytes (max_response_bytes" in body  # the config's cap applies


async def test_the_api_base_header_has_no_credentials(proxy: ProxyServer) -> None:
    status, body, headers = await post(proxy, "userinfo")
    assert status == 200, body
    assert headers["x-llmplex-api-base"].startswith("http://127.0.0.1:")
    assert "s3cr3t-pw" not in headers["x-llmplex-api-base"] and "admin" not in headers["x-llmplex-api-base"]


async def test_model_info_and_health_show_no_api_base_credentials(proxy: ProxyServer) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        for path in ("/model/info", "/v2/model/info", "/health?model=userinfo"):
            async with http.get(proxy.url + path) as resp:
                body = await resp.read()
            assert b"127.0.0.1" in body, path
            assert b"s3cr3t-pw" not in body and b"admin:" not in body, path


@pytest.mark.parametrize("name", list(RETRY_AFTERS))
async def test_an_absurd_retry_after_is_ignored_not_a_crash(proxy: ProxyServer, name: str) -> None:
    status, body, headers = await post(proxy, f"retry-{name}")
    assert status == 429 and b"slow down" in body  # the upstream's answer, as JSON, not a plain-text 500
    assert "retry-after" not in headers or len(headers["retry-after"]) < 6


async def test_failed_requests_leave_no_cycles_in_the_proxy(proxy: ProxyServer) -> None:
    """The answered-requests test in test_app.py, for error paths: upstream 4xx, 429, 502s, stream errors.
    Client and server share this process; an exception, traceback or frame in a cycle would pin a request."""
    models = ["redirect", "echo", "retry-nan", "huge"]
    for model in models:  # warm: connections, lazy imports, caches
        await post(proxy, model)
    gc.collect()
    gc.disable()
    try:
        for model in models * 3:
            status, _, _ = await post(proxy, model)
            assert status >= 400
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            unreachable = gc.collect()
            kinds = sorted({type(o).__qualname__ for o in gc.garbage})
            pinned = [o for o in gc.garbage if isinstance(o, (BaseException, TracebackType, FrameType))]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    finally:
        gc.enable()
    assert not pinned, f"{len(pinned)} errors/frames in cycles: {kinds}"
    assert unreachable < 20 * len(models) * 3, f"{unreachable} objects in cycles: {kinds}"
