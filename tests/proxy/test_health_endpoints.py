"""LiteLLM's health and introspection endpoints, Azure-style chat paths and JSON 404/405, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model

MASTER_KEY = "sk-health-master"
SECRET = "sk-upstream-secret-never-shown"
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    base = emulator.openai_base
    return proxy_factory(
        {
            "model_list": [
                openai_model("good", "good", base, api_key=SECRET, rpm=100, model_info={"id": "good-1"}),
                openai_model("good", "good-b", base, api_key=SECRET),
                openai_model("refused", "refused-status-401", base, api_key=SECRET, model_info={"id": "bad-1"}),
            ],
            "general_settings": {"master_key": MASTER_KEY},
        }
    )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def get(http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with http.get(url, headers=AUTH if headers is None else headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_health_checks_every_deployment_and_shows_no_secret(http: aiohttp.ClientSession, proxy: ProxyServer):
    status, body = await get(http, proxy.url + "/health")
    assert status == 200
    assert body["healthy_count"] == 2 and body["unhealthy_count"] == 1
    assert {e["model"] for e in body["healthy_endpoints"]} == {"openai/good", "openai/good-b"}
    (bad,) = body["unhealthy_endpoints"]
    assert bad["model_id"] == "bad-1" and "AuthenticationError" in bad["error"]
    assert SECRET not in str(body)
    status, body = await get(http, proxy.url + "/health?model=refused")
    assert status == 503 and body["unhealthy_count"] == 1  # LiteLLM: a targeted check with nothing healthy
    status, body = await get(http, proxy.url + "/health?model_id=good-1")
    assert status == 200 and body["healthy_count"] == 1
    status, body = await get(http, proxy.url + "/health", headers={})
    assert status == 401 and body["error"]["type"] == "authentication_error"


async def test_liveness_and_readiness_are_public(http: aiohttp.ClientSession, proxy: ProxyServer) -> None:
    for path in ("/health/liveliness", "/health/liveness"):
        assert await get(http, proxy.url + path, headers={}) == (200, "I'm alive!")
    status, body = await get(http, proxy.url + "/health/readiness", headers={})
    assert status == 200
    assert body["status"] == "healthy" and body["db"] == "Not connected"
    assert {"litellm_version", "success_callbacks", "log_level", "is_detailed_debug", "cache"} <= set(body)


async def test_model_info_shapes(http: aiohttp.ClientSession, proxy: ProxyServer) -> None:
    for path in ("/model/info", "/v1/model/info"):
        status, body = await get(http, proxy.url + path)
        assert status == 200 and len(body["data"]) == 3
        first = body["data"][0]
        assert first["model_name"] == "good"
        assert first["litellm_params"]["model"] == "openai/good" and first["litellm_params"]["rpm"] == 100
        assert first["model_info"]["id"] == "good-1" and first["model_info"]["litellm_provider"] == "openai"
        assert SECRET not in str(body)
    status, body = await get(http, proxy.url + "/model/info?litellm_model_id=bad-1")
    assert status == 200 and [d["model_name"] for d in body["data"]] == ["refused"]
    status, body = await get(http, proxy.url + "/model/info?litellm_model_id=nope")
    assert status == 400 and "nope" in body["error"]["message"]
    status, body = await get(http, proxy.url + "/v2/model/info?size=2&page=2")
    assert status == 200
    assert (body["total_count"], body["current_page"], body["total_pages"], body["size"]) == (3, 2, 2, 2)
    assert [d["model_name"] for d in body["data"]] == ["refused"]
    status, body = await get(http, proxy.url + "/v2/model/info?size=0")
    assert status == 422 and body["error"]["param"] == "size"
    status, body = await get(http, proxy.url + "/model/info", headers={})
    assert status == 401


async def test_model_group_info_and_routes(http: aiohttp.ClientSession, proxy: ProxyServer) -> None:
    status, body = await get(http, proxy.url + "/model_group/info")
    assert status == 200
    groups = {g["model_group"]: g for g in body["data"]}
    assert set(groups) == {"good", "refused"}
    assert groups["good"]["providers"] == ["openai"] and groups["good"]["rpm"] == 100
    assert "temperature" in groups["good"]["supported_openai_params"] and groups["good"]["mode"] == "chat"
    status, body = await get(http, proxy.url + "/model_group/info?model_group=refused")
    assert [g["model_group"] for g in body["data"]] == ["refused"]
    status, body = await get(http, proxy.url + "/routes")
    assert status == 200
    paths = {r["path"]: r for r in body["routes"]}
    assert {"/v1/chat/completions", "/health", "/model/info", "/v2/model/info", "/routes"} <= set(paths)
    assert paths["/health"]["methods"] == ["GET", "HEAD"]


async def test_unknown_route_and_wrong_method_are_openai_json(http: aiohttp.ClientSession, proxy: ProxyServer):
    async with http.get(proxy.url + "/v1/nowhere") as resp:
        body = await resp.json()
        assert resp.status == 404 and resp.content_type == "application/json"
        assert body["error"]["code"] == "404" and "/v1/nowhere" in body["error"]["message"]
    async with http.get(proxy.url + "/v1/chat/completions", headers=AUTH) as resp:
        body = await resp.json()
        assert resp.status == 405 and resp.content_type == "application/json"
        assert body["error"]["code"] == "405" and "POST" in resp.headers["allow"]
    async with http.delete(proxy.url + "/health") as resp:
        assert resp.status == 405 and "error" in await resp.json()


def test_azure_openai_client_through_the_deployment_path(proxy: ProxyServer) -> None:
    client = openai.AzureOpenAI(azure_endpoint=proxy.url, api_key=MASTER_KEY, api_version="2024-06-01", max_retries=0)
    with client:
        response = client.chat.completions.create(model="good", messages=MESSAGES)  # type: ignore[arg-type]
    assert response.choices[0].message.content == "Echo: hello"


@pytest.mark.parametrize("path", ["/engines/good/chat/completions", "/deployments/good/chat/completions"])
async def test_engine_paths_name_the_group(http: aiohttp.ClientSession, proxy: ProxyServer, path: str) -> None:
    body = {"model": "ignored-by-the-path", "messages": MESSAGES}
    async with http.post(proxy.url + path, json=body, headers=AUTH) as resp:
        assert resp.status == 200 and resp.headers["x-llmplex-model"] == "good"
    async with http.post(proxy.url + "/engines/nothing/chat/completions", json=body, headers=AUTH) as resp:
        assert resp.status == 400 and "nothing" in (await resp.json())["error"]["message"]


async def test_health_is_bounded_when_one_of_twenty_stalls(proxy_factory: Any, emulator: EmulatorServer) -> None:
    """20 deployments, one never sends its headers: /health answers in about the timeout, the stalled one unhealthy."""
    base = emulator.openai_base
    entries = [openai_model(f"m{i}", f"ok{i}", base, model_info={"id": f"d{i}"}) for i in range(19)]
    entries.append(openai_model("stuck", "stuck-fault-stallheaders", base, model_info={"id": "stuck"}))
    from llmplex.proxy import ProxyConfig

    config = ProxyConfig.from_dict({"model_list": entries}, environ={"HEALTH_CHECK_TIMEOUT_SECONDS": "1"})
    server = proxy_factory(config)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        started = time.monotonic()
        status, body = await get(http, server.url + "/health", headers={})
        elapsed = time.monotonic() - started
    assert status == 200
    assert elapsed <= 1.5, elapsed
    assert body["healthy_count"] == 19 and body["unhealthy_count"] == 1
    (stuck,) = body["unhealthy_endpoints"]
    assert stuck["model_id"] == "stuck" and "timeout" in stuck["error"].lower()


async def test_background_health_checks_answer_from_the_last_run(proxy_factory: Any, emulator: EmulatorServer):
    config = {
        "model_list": [openai_model("bg", "bg", emulator.openai_base)],
        "general_settings": {"background_health_checks": True, "health_check_interval": 3600},
    }
    server = proxy_factory(config)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        deadline = time.monotonic() + 5
        body: Any = {}
        while time.monotonic() < deadline:
            _, body = await get(http, server.url + "/health", headers={})
            if body["healthy_count"]:
                break
            await _sleep(0.05)
        assert body["healthy_count"] == 1
        before = (await emulator.astats())["received"]
        for _ in range(3):
            await get(http, server.url + "/health", headers={})
        assert (await emulator.astats())["received"] == before  # answered from the cache


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
