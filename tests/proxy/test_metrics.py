"""GET /metrics (per-app Prometheus registry), x-request-id on every response, the JSON access log."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmplex.proxy.access_log import ACCESS_LOGGER
from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model

MESSAGES = [{"role": "user", "content": "secret words of the user"}]
KEY = "sk-master-metrics-0123456789"


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    base = emulator.openai_base
    return proxy_factory(
        {
            "model_list": [
                openai_model("ok", "ok", base),
                openai_model("slow", "slow-delay-600", base),
                openai_model("slowish", "slowish-delay-300", base),
                openai_model("broken", "broken-status-500", base),
                openai_model("streamer", "streamer-chunks-3-ttft-50", base),
                {
                    "model_name": "claude",
                    "litellm_params": {"model": "anthropic/claude-test", "api_base": emulator.url, "api_key": "k"},
                },
            ],
            "general_settings": {"master_key": KEY},
        }
    )


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Sample values of one metric (``name`` as exposed, e.g. ``..._total``), keyed by sorted labels."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text, name).get(tuple(sorted(labels.items())), 0.0)


async def scrape(http: aiohttp.ClientSession, proxy: ProxyServer) -> str:
    async with http.get(proxy.url + "/metrics", headers={"Authorization": f"Bearer {KEY}"}) as resp:
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/plain")
        return await resp.text()


async def chat(http: aiohttp.ClientSession, proxy: ProxyServer, **body: Any) -> tuple[int, Any, Any]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with http.post(proxy.base + "/chat/completions", json={"messages": MESSAGES, **body}, headers=headers) as r:
        raw = await r.read()
        return r.status, r.headers, raw


async def wait_metric(http: aiohttp.ClientSession, proxy: ProxyServer, name: str, want: float, **labels: str) -> str:
    """Streams are counted when the server finishes them, a moment after the client read [DONE]."""
    deadline = time.monotonic() + 2.0
    while True:
        text = await scrape(http, proxy)
        if value(text, name, **labels) >= want or time.monotonic() > deadline:
            return text
        await asyncio.sleep(0.02)


async def test_requests_latency_and_errors_are_counted(proxy: ProxyServer) -> None:
    route = "/v1/chat/completions"
    async with aiohttp.ClientSession() as http:
        before = await scrape(http, proxy)
        for _ in range(3):
            status, _, _ = await chat(http, proxy, model="ok")
            assert status == 200
        status, _, _ = await chat(http, proxy, model="broken")
        assert status == 500
        status, _, _ = await chat(http, proxy, model="no-such-model")
        assert status == 400
        after = await scrape(http, proxy)
    ok = {"route": route, "model": "ok", "status": "200"}
    assert value(after, "llmplex_proxy_requests_total", **ok) - value(before, "llmplex_proxy_requests_total", **ok) == 3
    lat = {"route": route, "model": "ok"}
    grew = value(after, "llmplex_proxy_request_duration_seconds_count", **lat) - value(
        before, "llmplex_proxy_request_duration_seconds_count", **lat
    )
    assert grew == 3
    assert value(after, "llmplex_proxy_requests_total", route=route, model="broken", status="500") >= 1
    assert value(after, "llmplex_proxy_upstream_errors_total", model="broken", error="InternalServerError") >= 1
    # a name the client invented never becomes a label (unbounded cardinality)
    assert "no-such-model" not in after
    assert value(after, "llmplex_proxy_requests_total", route=route, model="-", status="400") >= 1


async def test_errors_are_counted_by_origin(proxy: ProxyServer) -> None:
    """Refused requests count as the client's, failed calls as the upstream's; only the latter are upstream errors."""
    async with aiohttp.ClientSession() as http:
        before = await scrape(http, proxy)
        assert (await chat(http, proxy, model="no-such-model"))[0] == 400  # the proxy refuses it
        # the SDK refuses it (a tool result without its call id cannot be translated), before any upstream call
        bad_turns = [*MESSAGES, {"role": "tool", "content": "42"}]
        async with http.post(
            proxy.base + "/chat/completions",
            json={"model": "claude", "messages": bad_turns},
            headers={"Authorization": f"Bearer {KEY}"},
        ) as resp:
            assert resp.status == 400
        assert (await chat(http, proxy, model="broken"))[0] == 500  # the upstream fails
        after = await scrape(http, proxy)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    errors = "llmplex_proxy_errors_total"
    assert grew(errors, model="-", origin="client", error="ProxyError") == 1
    assert grew(errors, model="claude", origin="client", error="BadRequestError") == 1
    assert grew(errors, model="broken", origin="upstream", error="InternalServerError") >= 1
    assert grew("llmplex_proxy_upstream_errors_total", model="claude", error="BadRequestError") == 0
    assert not [labels for labels in samples(after, errors) if ("origin", "internal") in labels]


async def test_metrics_and_openapi_need_the_master_key(proxy: ProxyServer) -> None:
    """Both name every configured model (what /v1/models protects)."""
    async with aiohttp.ClientSession() as http:
        for path in ("/metrics", "/openapi.json"):
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                async with http.get(proxy.url + path, headers=headers) as resp:
                    assert resp.status == 401, path
                    body = await resp.text()
                    assert "streamer" not in body and '"authentication_error"' in body
            async with http.get(proxy.url + path, headers={"x-api-key": KEY}) as resp:
                assert resp.status == 200 and "llmplex" in await resp.text()


async def test_stream_ttft_is_observed(proxy: ProxyServer) -> None:
    async with aiohttp.ClientSession() as http:
        status, _, raw = await chat(http, proxy, model="streamer", stream=True)
        assert status == 200 and raw.rstrip().endswith(b"data: [DONE]")
        text = await wait_metric(http, proxy, "llmplex_proxy_time_to_first_token_seconds_count", 1, model="streamer")
    assert value(text, "llmplex_proxy_time_to_first_token_seconds_count", model="streamer") >= 1
    ttft_sum = value(text, "llmplex_proxy_time_to_first_token_seconds_sum", model="streamer")
    count = value(text, "llmplex_proxy_time_to_first_token_seconds_count", model="streamer")
    assert 0.04 <= ttft_sum / count < 2.0  # the emulator waits 50 ms before the first chunk


async def test_race_wins_cancelled_losers_and_hedges(proxy: ProxyServer) -> None:
    async with aiohttp.ClientSession() as http:
        before = await scrape(http, proxy)
        status, headers, _ = await chat(http, proxy, model=["slow", "ok"], fastest_response=True)
        assert status == 200 and headers["x-llmplex-model"] == "ok"
        # hedged: "slowish" starts first, "ok" only after 50 ms and still wins
        status, headers, _ = await chat(http, proxy, model=["slowish", "ok"], fastest_response=True, hedge_delay=0.05)
        assert status == 200 and headers["x-llmplex-model"] == "ok"
        after = await scrape(http, proxy)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("llmplex_proxy_race_wins_total", model="ok") == 2
    assert grew("llmplex_proxy_race_cancelled_total", model="slow") == 1
    assert grew("llmplex_proxy_race_cancelled_total", model="slowish") == 1
    assert grew("llmplex_proxy_hedges_sent_total", model="ok") == 1
    assert grew("llmplex_proxy_hedges_sent_total", model="slowish") == 0


async def test_in_flight_gauge(proxy: ProxyServer) -> None:
    async with aiohttp.ClientSession() as http:
        slow = asyncio.ensure_future(chat(http, proxy, model="slow"))
        deadline = time.monotonic() + 2.0
        during = 0.0
        while time.monotonic() < deadline and during < 2:
            await asyncio.sleep(0.02)
            during = value(await scrape(http, proxy), "llmplex_proxy_requests_in_flight")
        assert during == 2  # the slow chat plus this scrape
        assert (await slow)[0] == 200
        assert value(await scrape(http, proxy), "llmplex_proxy_requests_in_flight") == 1


async def test_two_apps_in_one_process_count_separately(proxy_factory: Any, emulator: EmulatorServer) -> None:
    first = proxy_factory({"model_list": [openai_model("a", "a", emulator.openai_base)]})
    second = proxy_factory({"model_list": [openai_model("a", "a", emulator.openai_base)]})
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            async with http.post(first.base + "/chat/completions", json={"model": "a", "messages": MESSAGES}) as r:
                assert r.status == 200
        labels = {"route": "/v1/chat/completions", "model": "a", "status": "200"}
        assert value(await scrape(http, first), "llmplex_proxy_requests_total", **labels) == 2
        assert value(await scrape(http, second), "llmplex_proxy_requests_total", **labels) == 0


async def test_x_request_id_on_every_response(proxy: ProxyServer) -> None:
    async with aiohttp.ClientSession() as http:
        ids = set()
        for method, path, kwargs in [
            ("GET", "/health/liveliness", {}),
            ("GET", "/metrics", {}),
            ("GET", "/openapi.json", {}),
            ("GET", "/v1/models", {}),  # 401: no key
            ("GET", "/nowhere", {}),  # 404
            ("DELETE", "/v1/chat/completions", {}),  # 405
            ("POST", "/v1/chat/completions", {"data": b"{"}),  # 401 before the body is read
        ]:
            async with http.request(method, proxy.url + path, **kwargs) as resp:
                request_id = resp.headers.get("x-request-id")
                assert request_id and len(request_id) >= 16, (path, resp.status)
                ids.add(request_id)
        assert len(ids) == 7  # fresh per request
        async with http.get(proxy.url + "/health/liveliness", headers={"x-request-id": "trace-abc.123"}) as resp:
            assert resp.headers["x-request-id"] == "trace-abc.123"
        # a value that could inject into logs or headers is replaced, not echoed
        async with http.get(proxy.url + "/health/liveliness", headers={"x-request-id": "a b\tc"}) as resp:
            assert resp.headers["x-request-id"] != "a b\tc"


async def test_access_log_one_json_line_per_request(proxy: ProxyServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {KEY}", "x-request-id": "log-test-1"}
        body = {"model": "ok", "messages": MESSAGES}
        async with http.post(proxy.base + "/chat/completions", json=body, headers=headers) as resp:
            assert resp.status == 200
        headers["x-request-id"] = "log-test-2"
        body = {"model": "streamer", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
        async with http.post(proxy.base + "/chat/completions", json=body, headers=headers) as resp:
            await resp.read()
        headers["x-request-id"] = "log-test-3"
        body = {"model": "broken", "messages": MESSAGES}
        async with http.post(proxy.base + "/chat/completions", json=body, headers=headers) as resp:
            assert resp.status == 500
        for _ in range(100):  # the stream's line is written when the server finishes it
            if "log-test-2" in caplog.text:
                break
            await asyncio.sleep(0.02)
    lines = {}
    for rec in caplog.records:
        if rec.name == ACCESS_LOGGER:
            line = orjson.loads(rec.getMessage())
            lines[line["request_id"]] = line
    plain, stream, failed = lines["log-test-1"], lines["log-test-2"], lines["log-test-3"]
    assert plain["status"] == 200 and plain["models"] == ["ok"] and plain["winner"] == "ok"
    assert plain["prompt_tokens"] == 5 and plain["completion_tokens"] == 6 and plain["latency_ms"] > 0
    assert "cost" in plain and plain["stream"] is False
    assert stream["stream"] is True and stream["ttft_ms"] > 0 and stream["completion_tokens"] == 6
    assert failed["status"] == 500 and failed["error"] == "InternalServerError"
    assert failed["upstream_errors"] == ["broken:InternalServerError"]
    text = caplog.text
    assert "secret words" not in text and KEY not in text and "test-key" not in text
