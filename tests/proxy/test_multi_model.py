"""Several models in one request: an array in model order, or a race (fastest_response), streamed or not."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model
from tests.raw_upstream import Conn, Received, completion_body, serve

MESSAGES = [{"role": "user", "content": "race me"}]


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    base = emulator.openai_base
    return proxy_factory(
        {
            "model_list": [
                openai_model("fast", "fast-delay-10", base, model_info={"id": "fast-id"}),
                openai_model("slow", "slow-delay-3000", base),
                openai_model("medium", "medium-delay-150", base),
                openai_model("ratelimited", "rl-status-429-retryafter-3", base),
                openai_model("broken", "broken-status-503", base),
                openai_model("fast-stream", "fs-ttft-10", base),
                openai_model("slow-stream", "ss-ttft-3000", base),
                openai_model("hedged-first", "hf-delay-100", base),
                openai_model("hedged-second", "hs-delay-100", base),
            ]
        }
    )


async def post(proxy: ProxyServer, body: dict[str, Any]) -> tuple[int, Any, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.post(proxy.base + "/chat/completions", json=body) as resp,
    ):
        return resp.status, await resp.json(content_type=None), resp.headers


@pytest.mark.parametrize("model", ["medium, fast,broken", ["medium", "fast", "broken"]], ids=["csv", "list"])
async def test_all_models_answer_in_order_with_error_slots(proxy: ProxyServer, model: Any) -> None:
    status, body, _ = await post(proxy, {"model": model, "messages": MESSAGES})
    assert status == 200
    assert isinstance(body, list) and len(body) == 3
    assert body[0]["model"] == "medium-delay-150" and body[1]["model"] == "fast-delay-10"
    assert body[0]["choices"][0]["message"]["content"] == "Echo: race me"
    error = body[2]["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] is not None


def test_fastest_response_with_the_openai_sdk(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    before = emulator.stats()
    with openai.OpenAI(base_url=proxy.base, api_key="unused", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="slow, fast",
            messages=MESSAGES,  # type: ignore[arg-type]
            extra_body={"fastest_response": True},
        )
    response = raw.parse()
    assert response.model == "fast-delay-10"
    assert raw.headers["x-llmplex-model"] == "fast"
    assert raw.headers["x-llmplex-model-id"] == "fast-id"
    assert raw.headers["x-llmplex-api-base"] == emulator.openai_base
    assert float(raw.headers["x-llmplex-response-cost"]) >= 0.0
    assert 0.0 <= float(raw.headers["x-llmplex-overhead-ms"]) < 1000
    # the slow loser was cancelled: its connection closed long before its 3 s answer
    stats = emulator.stats()
    assert stats["received"] - before["received"] == 2


async def test_race_loser_is_disconnected(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    before = await emulator.astats()
    status, _, headers = await post(proxy, {"model": "fast, slow", "messages": MESSAGES, "fastest_response": True})
    assert status == 200 and headers["x-llmplex-model"] == "fast"
    await emulator.wait_for(lambda s: s["disconnected"] >= before["disconnected"] + 1, timeout=2.0)


async def test_race_skips_failures(proxy: ProxyServer) -> None:
    status, _, headers = await post(proxy, {"model": "broken, medium", "messages": MESSAGES, "fastest_response": True})
    assert status == 200 and headers["x-llmplex-model"] == "medium"


async def test_all_failed_gives_the_most_meaningful_status_and_every_error(proxy: ProxyServer) -> None:
    status, body, headers = await post(
        proxy, {"model": "broken, ratelimited", "messages": MESSAGES, "fastest_response": True}
    )
    assert status == 429
    assert headers["retry-after"] == "3"
    message = body["error"]["message"]
    assert "broken:" in message and "ratelimited:" in message


async def test_stream_race_on_first_token(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    before = await emulator.astats()
    async with openai.AsyncOpenAI(base_url=proxy.base, api_key="unused", max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="slow-stream, fast-stream",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            extra_body={"fastest_response": True},
        )
        assert raw.headers["x-llmplex-model"] == "fast-stream"
        stream = raw.parse()
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Echo: race me"
    await emulator.wait_for(lambda s: s["disconnected"] >= before["disconnected"] + 1, timeout=2.0)


async def test_stream_with_several_models_needs_fastest(proxy: ProxyServer) -> None:
    status, body, _ = await post(proxy, {"model": "fast, medium", "messages": MESSAGES, "stream": True})
    assert status == 400 and body["error"]["param"] == "stream"


async def test_unknown_model_in_a_list(proxy: ProxyServer) -> None:
    status, body, _ = await post(proxy, {"model": "fast, nope", "messages": MESSAGES, "fastest_response": True})
    assert status == 400
    assert "nope" in body["error"]["message"] and "medium" in body["error"]["message"]


async def test_hedge_delay_starts_the_next_model_only_when_needed(proxy: ProxyServer, emulator: EmulatorServer) -> None:
    before = await emulator.astats()
    body = {"model": "hedged-first, hedged-second", "messages": MESSAGES, "fastest_response": True, "hedge_delay": 2}
    status, _, headers = await post(proxy, body)
    assert status == 200 and headers["x-llmplex-model"] == "hedged-first"
    assert (await emulator.astats())["received"] - before["received"] == 1
    body["hedge_delay"] = 0.02
    status, _, _ = await post(proxy, body)
    assert status == 200
    assert (await emulator.astats())["received"] - before["received"] == 3


async def test_control_fields_never_reach_the_provider(proxy_factory: Any) -> None:
    seen: list[dict[str, Any]] = []

    async def handler(request: Received, conn: Conn) -> None:
        seen.append(request.json())
        await conn.respond(200, completion_body("captured"))

    async with serve(handler) as upstream:
        capture = proxy_factory(
            {"model_list": [openai_model("a", "a", upstream.openai_base), openai_model("b", "b", upstream.openai_base)]}
        )
        body = {"model": "a,b", "messages": MESSAGES, "fastest_response": True, "hedge_delay": 0, "temperature": 0.5}
        status, _, _ = await post(capture, body)
        assert status == 200
        status, _, _ = await post(capture, {"model": "a", "messages": MESSAGES, "fastest_response": False})
        assert status == 200
    assert seen
    for sent in seen:
        assert "fastest_response" not in sent and "hedge_delay" not in sent
        assert sent["model"] in ("a", "b")
    assert seen[0]["temperature"] == 0.5
