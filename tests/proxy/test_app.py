"""The proxy over HTTP: openai SDK clients, auth, error shapes and statuses, headers, endpoints."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model

MASTER_KEY = "sk-proxy-master-key"
MESSAGES = [{"role": "user", "content": "hello proxy"}]


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    base = emulator.openai_base
    return proxy_factory(
        {
            "model_list": [
                openai_model("gpt-test", "gpt-test", base, model_info={"id": "dep-1"}),
                openai_model("limited", "limited-status-429-retryafter-7", base),
                openai_model("badkey", "m", base, api_key="bad-key"),
            ],
            "router_settings": {"model_group_alias": {"gpt-alias": "gpt-test"}},
            "general_settings": {"master_key": MASTER_KEY},
            "llmplex_settings": {"max_request_body_bytes": 4096},
        }
    )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


async def post(
    http: aiohttp.ClientSession, proxy: ProxyServer, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any, Any]:
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
    async with http.post(proxy.base + "/chat/completions", headers=headers or AUTH, **kwargs) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


def test_openai_sync_client(proxy: ProxyServer) -> None:
    with openai.OpenAI(base_url=proxy.base, api_key=MASTER_KEY, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
        response = raw.parse()
    assert response.choices[0].message.content == "Echo: hello proxy"
    assert response.usage is not None and response.usage.total_tokens > 0
    assert raw.headers["x-llmplex-model"] == "gpt-test"
    assert raw.headers["x-llmplex-model-id"] == "dep-1"
    assert raw.headers["x-llmplex-api-base"].startswith("http://127.0.0.1:")
    assert raw.headers["x-request-id"]


async def test_openai_async_client_and_alias(proxy: ProxyServer) -> None:
    async with openai.AsyncOpenAI(base_url=proxy.base, api_key=MASTER_KEY, max_retries=0) as client:
        response = await client.chat.completions.create(model="gpt-alias", messages=MESSAGES)  # type: ignore[arg-type]
        models = await client.models.list()
    assert response.choices[0].message.content == "Echo: hello proxy"
    assert [m.id for m in models.data] == ["gpt-test", "limited", "badkey", "gpt-alias"]


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {MASTER_KEY}"}, {"api-key": MASTER_KEY}, {"x-api-key": MASTER_KEY}],
    ids=["bearer", "api-key", "x-api-key"],
)
async def test_auth_headers_accepted(http: aiohttp.ClientSession, proxy: ProxyServer, headers: dict[str, str]) -> None:
    status, body, _ = await post(http, proxy, {"model": "gpt-test", "messages": MESSAGES}, headers)
    assert status == 200, body


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer sk-wrong-key"}, {"Authorization": f"Basic {MASTER_KEY}"}, {"x-api-key": "nope"}],
    ids=["missing", "wrong", "basic-scheme", "wrong-x-api-key"],
)
async def test_auth_failures_are_openai_shaped_401(
    http: aiohttp.ClientSession, proxy: ProxyServer, headers: dict[str, str]
) -> None:
    status, body, resp_headers = await post(
        http, proxy, {"model": "gpt-test", "messages": MESSAGES}, headers or {"x-other": "1"}
    )
    assert status == 401
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "authentication_error"
    assert "wrong-key" not in str(body) and "nope" not in str(body)
    async with http.get(proxy.base + "/models", headers=headers or {"x-other": "1"}) as resp:
        assert resp.status == 401
    assert resp_headers["x-request-id"]


def test_openai_sdk_sees_authentication_error(proxy: ProxyServer) -> None:
    with (
        openai.OpenAI(base_url=proxy.base, api_key="sk-wrong", max_retries=0) as client,
        pytest.raises(openai.AuthenticationError),
    ):
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "status", "param", "text"),
    [
        (b"{not json", 400, None, "Invalid JSON"),
        (b"[1, 2]", 400, None, "JSON object"),
        ({"model": "gpt-test"}, 400, "messages", "messages"),
        ({"model": "gpt-test", "messages": []}, 400, "messages", "messages"),
        ({"messages": MESSAGES}, 400, "model", "model"),
        ({"model": 42, "messages": MESSAGES}, 400, "model", "model"),
        ({"model": "gpt-test", "messages": [{"role": "wizard", "content": "x"}]}, 400, "messages", "role"),
        ({"model": "gpt-test", "messages": MESSAGES, "api_base": "http://evil"}, 400, "api_base", "api_base"),
        ({"model": "gpt-test", "messages": MESSAGES, "stream": "yes"}, 400, "stream", "stream"),
        ({"model": "gpt-test", "messages": MESSAGES, "hedge_delay": -1}, 400, "hedge_delay", "hedge_delay"),
    ],
)
async def test_request_errors(
    http: aiohttp.ClientSession, proxy: ProxyServer, body: Any, status: int, param: str | None, text: str
) -> None:
    got, data, _ = await post(http, proxy, body)
    assert got == status, data
    assert data["error"]["param"] == param
    assert text in data["error"]["message"]
    assert data["error"]["type"] == "invalid_request_error"


async def test_unknown_model_names_it_and_lists_available(http: aiohttp.ClientSession, proxy: ProxyServer) -> None:
    status, body, _ = await post(http, proxy, {"model": "gpt-nope", "messages": MESSAGES})
    assert status == 400
    message = body["error"]["message"]
    assert "gpt-nope" in message and "gpt-test" in message and "gpt-alias" in message


async def test_body_over_the_limit_is_413(http: aiohttp.ClientSession, proxy: ProxyServer) -> None:
    big = {"model": "gpt-test", "messages": [{"role": "user", "content": "x" * 5000}]}
    status, body, _ = await post(http, proxy, big)
    assert status == 413 and "4096" in body["error"]["message"]

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the streamed bytes are counted
        for _ in range(10):
            yield b" " * 1000

    async with http.post(proxy.base + "/chat/completions", headers=AUTH, data=chunked()) as resp:
        assert resp.status == 413


async def test_upstream_status_and_retry_after_are_kept(http: aiohttp.ClientSession, proxy: ProxyServer) -> None:
    status, body, headers = await post(http, proxy, {"model": "limited", "messages": MESSAGES})
    assert status == 429
    assert headers["retry-after"] == "7"
    assert body["error"]["type"]
    status, body, _ = await post(http, proxy, {"model": "badkey", "messages": MESSAGES})
    assert status == 401  # the upstream's auth failure, not the proxy's
    assert "bad-key" not in str(body)


async def test_request_id_is_echoed_or_generated(http: aiohttp.ClientSession, proxy: ProxyServer) -> None:
    async with http.get(proxy.url + "/health/liveliness", headers={"x-request-id": "abc-123"}) as resp:
        assert resp.headers["x-request-id"] == "abc-123"
    async with http.get(proxy.url + "/nowhere") as resp:
        assert resp.status == 404 and len(resp.headers["x-request-id"]) >= 16


async def test_health_and_openapi(http: aiohttp.ClientSession, proxy: ProxyServer) -> None:
    async with http.get(proxy.url + "/health/liveliness") as resp:
        assert resp.status == 200
    async with http.get(proxy.url + "/health/readiness") as resp:
        assert resp.status == 200 and (await resp.json())["status"] == "healthy"
    async with http.get(proxy.url + "/openapi.json") as resp:
        assert resp.status == 401  # it lists every model name: the master key is needed, as for /v1/models
    async with http.get(proxy.url + "/openapi.json", headers={"Authorization": f"Bearer {MASTER_KEY}"}) as resp:
        doc = await resp.json()
    assert {"/chat/completions", "/v1/chat/completions", "/models", "/v1/models", "/health/readiness"} <= set(
        doc["paths"]
    )
    assert "ChatCompletion" in doc["components"]["schemas"]
    assert MASTER_KEY not in str(doc)


async def test_two_apps_in_one_process_are_independent(
    http: aiohttp.ClientSession, proxy: ProxyServer, proxy_factory: Any, emulator: EmulatorServer
) -> None:
    other = proxy_factory({"model_list": [openai_model("other-model", "other", emulator.openai_base)]})
    async with http.post(other.base + "/chat/completions", json={"model": "other-model", "messages": MESSAGES}) as r:
        assert r.status == 200  # no master key on this one
    status, _, _ = await post(http, proxy, {"model": "other-model", "messages": MESSAGES})
    assert status == 400


async def test_answered_requests_leave_no_reference_cycles(http: aiohttp.ClientSession, proxy: ProxyServer) -> None:
    """Requests are freed by reference counting alone, which is what lets the server run its garbage
    collector rarely (``app.GC_THRESHOLDS``). Client and server share this process: neither may leave cycles."""
    body = {"model": "gpt-test", "messages": MESSAGES}
    stream_body = {**body, "stream": True}
    for _ in range(3):  # warm: connections, lazy imports, caches
        await post(http, proxy, body)
    gc.collect()
    gc.disable()
    try:
        for i in range(60):
            if i % 3:
                status, _, _ = await post(http, proxy, body)
            else:
                async with http.post(proxy.base + "/chat/completions", json=stream_body, headers=AUTH) as resp:
                    status = resp.status
                    await resp.read()
            assert status == 200
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            unreachable = gc.collect()
            kinds = sorted({type(o).__qualname__ for o in gc.garbage})[:20]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    finally:
        gc.enable()
    assert unreachable < 60, f"{unreachable} objects in cycles after 60 requests: {kinds}"
