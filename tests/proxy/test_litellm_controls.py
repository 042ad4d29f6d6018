"""LiteLLM's per-request body fields and x-litellm-* headers through the proxy, with the openai SDK.

Controls (``fallbacks``, ``mock_*``, ``num_retries``, ``priority``, ``metadata``) are acted on by the proxy
and never forwarded; the response carries LiteLLM's headers beside llmplex's; a model given twice in a race
is two attempts labelled by position.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import openai
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model

MESSAGES = [{"role": "user", "content": "proxy control"}]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    base = emulator.openai_base
    secret_base = base.replace("http://", "http://user:pw@") + "?token=s3cret"  # never echoed (mock answers)
    return proxy_factory(
        {
            "model_list": [
                openai_model("primary", "primary-a", base, model_info={"id": "primary-id"}),
                openai_model("backup", "backup-b", base, model_info={"id": "backup-id"}),
                openai_model("secret", "secret-c", secret_base, model_info={"id": "secret-id"}),
                openai_model("broken", "broken-status-500", base),
                openai_model("flaky", "flaky-status-503-times-1", base),
                openai_model("fast", "fast-delay-20", base),
                openai_model("slow", "slow-delay-1500", base),
            ],
            "router_settings": {"num_retries": 0, "fallbacks": [{"broken": ["primary"]}]},
        }
    )


async def post(proxy: ProxyServer, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.post(proxy.base + "/chat/completions", json=body, headers=headers or {}) as resp,
    ):
        return resp.status, await resp.json(content_type=None), resp.headers


def test_fallbacks_and_mock_testing_with_the_openai_sdk(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    emulator.reset()
    with openai.OpenAI(base_url=proxy.base, api_key="unused", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="primary",
            messages=MESSAGES,  # type: ignore[arg-type]
            extra_body={"mock_testing_fallbacks": True, "fallbacks": ["backup"], "metadata": {"team": "a"}},
        )
    response = raw.parse()
    assert response.model == "backup-b"
    headers = raw.headers
    assert headers["x-litellm-model-group"] == "backup"
    assert headers["x-litellm-model-id"] == "backup-id"
    assert headers["x-litellm-attempted-fallbacks"] == "1"
    assert headers["x-litellm-attempted-retries"] == "0"
    assert emulator.stats()["received"] == 1


async def test_api_base_headers_never_carry_credentials(proxy: ProxyServer) -> None:
    status, _, headers = await post(proxy, {"model": "secret", "messages": MESSAGES, "mock_response": "x"})
    assert status == 200
    for name in ("x-litellm-model-api-base", "x-llmplex-api-base"):
        base = headers[name]
        assert "user" not in base and "pw" not in base and "s3cret" not in base and base.endswith("/v1"), base


async def test_litellm_response_headers(proxy: ProxyServer) -> None:
    status, _, headers = await post(proxy, {"model": "primary", "messages": MESSAGES})
    assert status == 200
    assert headers["x-litellm-model-id"] == "primary-id" == headers["x-llmplex-model-id"]
    assert headers["x-litellm-model-group"] == "primary"
    assert headers["x-litellm-attempted-retries"] == "0" and headers["x-litellm-attempted-fallbacks"] == "0"
    assert headers["x-litellm-max-retries"] == "0"
    assert float(headers["x-litellm-timeout"]) > 0
    assert UUID.match(headers["x-litellm-call-id"])
    assert float(headers["x-litellm-response-cost"]) >= 0
    _, _, again = await post(proxy, {"model": "primary", "messages": MESSAGES})
    assert again["x-litellm-call-id"] != headers["x-litellm-call-id"]


async def test_request_headers_timeout_retries_and_call_id(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    await emulator.areset()
    status, body, headers = await post(
        proxy,
        {"model": "flaky", "messages": MESSAGES},
        {"x-litellm-timeout": "7", "x-litellm-num-retries": "1", "x-litellm-call-id": "my-call-1"},
    )
    assert status == 200, body
    assert headers["x-litellm-timeout"] == "7"
    assert headers["x-litellm-call-id"] == "my-call-1"
    assert headers["x-litellm-attempted-retries"] == "1" and headers["x-litellm-max-retries"] == "1"
    status, body, _ = await post(proxy, {"model": "primary", "messages": MESSAGES}, {"x-litellm-timeout": "soon"})
    assert status == 400 and body["error"]["param"] == "x-litellm-timeout"


async def test_errors_carry_the_call_id_and_the_timeout(proxy: ProxyServer) -> None:
    body = {"model": "primary", "messages": MESSAGES, "mock_timeout": True}
    status, _, headers = await post(proxy, body, {"x-litellm-timeout": "1", "x-litellm-call-id": "failing-1"})
    assert status == 504
    assert headers["x-litellm-call-id"] == "failing-1" and headers["x-litellm-timeout"] == "1"
    status, _, headers = await post(proxy, {"model": "nope", "messages": MESSAGES})
    assert status == 400 and UUID.match(headers["x-litellm-call-id"])


async def test_num_retries_in_the_body(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    await emulator.areset()
    status, _, _ = await post(proxy, {"model": "flaky", "messages": MESSAGES})
    assert status == 503  # router_settings.num_retries: 0
    await emulator.areset()
    status, _, headers = await post(proxy, {"model": "flaky", "messages": MESSAGES, "num_retries": 1})
    assert status == 200 and headers["x-litellm-attempted-retries"] == "1"


async def test_router_fallbacks_count_in_the_headers(proxy: ProxyServer) -> None:
    status, body, headers = await post(proxy, {"model": "broken", "messages": MESSAGES})
    assert status == 200 and body["model"] == "primary-a"
    assert headers["x-litellm-attempted-fallbacks"] == "1" and headers["x-litellm-model-group"] == "primary"
    status, _, _ = await post(proxy, {"model": "broken", "messages": MESSAGES, "disable_fallbacks": True})
    assert status == 500


async def test_mock_response_with_n_and_rate_limit_mock(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    await emulator.areset()
    status, body, _ = await post(proxy, {"model": "primary", "messages": MESSAGES, "mock_response": "hi", "n": 2})
    assert status == 200 and [c["message"]["content"] for c in body["choices"]] == ["hi", "hi"]
    mocked_429 = {"model": "primary", "messages": MESSAGES, "mock_testing_rate_limit_error": True}
    status, body, _ = await post(proxy, mocked_429)
    assert status == 429
    assert (await emulator.astats())["received"] == 0


async def test_mock_timeout_then_fallback(proxy: ProxyServer) -> None:
    body = {"model": "primary", "messages": MESSAGES, "mock_timeout": True, "timeout": 1}
    status, _, _ = await post(proxy, body)
    assert status == 504
    status, answer, _ = await post(proxy, {**body, "fallbacks": [{"model": "backup", "mock_timeout": False}]})
    assert status == 200 and answer["model"] == "backup-b"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"fallbacks": "backup"}, "fallbacks"),
        ({"fallbacks": ["nope"]}, "fallbacks"),
        ({"fallbacks": [{"model": "backup", "api_key": "steal"}]}, "fallbacks"),
        ({"priority": "high"}, "priority"),
        ({"priority": 1.5}, "priority"),
        ({"num_retries": 99}, "num_retries"),
        ({"mock_response": {"not": "text"}}, "mock_response"),
        ({"mock_timeout": "yes"}, "mock_timeout"),
        ({"mock_delay": 1}, "mock_delay"),
    ],
)
async def test_malformed_controls_are_400s_naming_the_field(
    proxy: ProxyServer, extra: dict[str, Any], param: str
) -> None:
    status, body, _ = await post(proxy, {"model": "primary", "messages": MESSAGES, **extra})
    assert status == 400, body
    assert body["error"]["param"] == param


async def test_priority_is_accepted_and_not_forwarded(proxy: ProxyServer) -> None:
    status, body, _ = await post(proxy, {"model": "primary", "messages": MESSAGES, "priority": 0})
    assert status == 200, body


async def test_a_model_raced_against_itself(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    await emulator.areset()
    status, body, headers = await post(
        proxy, {"model": "fast, fast, fast", "messages": MESSAGES, "fastest_response": True}
    )
    assert status == 200, body
    assert headers["x-llmplex-model"] in {"fast#0", "fast#1", "fast#2"}
    assert (await emulator.astats())["received"] == 3
    status, body, _ = await post(proxy, {"model": ["fast", "fast"], "messages": MESSAGES})
    assert status == 200 and len(body) == 2  # every answer: one slot per position


def test_race_with_the_openai_sdk_closes_the_loser(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    emulator.reset()
    with openai.OpenAI(base_url=proxy.base, api_key="unused", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="slow, fast",
            messages=MESSAGES,  # type: ignore[arg-type]
            extra_body={"fastest_response": True},
        )
    assert raw.parse().model == "fast-delay-20"
    assert raw.headers["x-litellm-model-group"] == "fast"
