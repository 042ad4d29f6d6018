"""Hostile input: schemathesis against the proxy's own /openapi.json, then hand-written garbage."""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model

KEY = "sk-hostile-master-key"
FUZZ_EXAMPLES = 30  # per operation and mode: about 15 s in all on a busy 2-core machine
# CI replays the same examples (no flaky reds); LLMPLEX_FUZZ_RANDOM=1 explores new ones
RANDOM_FUZZ = os.environ.get("LLMPLEX_FUZZ_RANDOM") == "1"


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    base = emulator.openai_base
    return proxy_factory(
        {
            "model_list": [openai_model("ok", "ok", base)],
            "general_settings": {"master_key": KEY},
            "llmplex_settings": {"max_request_body_bytes": 65536, "request_body_timeout_seconds": 1.0},
        }
    )


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_openapi_fuzz(proxy: ProxyServer, mode: GenerationMode) -> None:
    """Positive: schema-valid requests are accepted and answered per the schema. Negative: rejected with a 4xx."""
    document = urllib.request.Request(proxy.url + "/openapi.json", headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(document, timeout=5) as response:
        schema = schemathesis.openapi.from_dict(orjson.loads(response.read()))
    headers = {"Authorization": f"Bearer {KEY}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 8, [op.label for op in operations]
    if mode is GenerationMode.NEGATIVE:  # only requests with a body can be schema-invalid
        operations = [op for op in operations if op.method.upper() == "POST"]
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=not RANDOM_FUZZ,
        )
        def check(case: Any) -> None:
            try:
                case.call_and_validate(base_url=proxy.url, headers=headers)
            except Exception:
                print("failing body:", orjson.dumps(case.body, option=orjson.OPT_NON_STR_KEYS).decode()[:3000])
                raise

        check()


# ---------------------------------------------------------------- hand-written garbage

GOOD = {"model": "ok", "messages": [{"role": "user", "content": "hi"}]}
AUTH = {"Authorization": f"Bearer {KEY}"}


async def _post(proxy: ProxyServer, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(proxy.base + "/chat/completions", data=data, headers={**AUTH, **(headers or {})}) as resp,
    ):
        raw = await resp.read()
        return resp.status, orjson.loads(raw) if resp.content_type == "application/json" else raw


def _assert_openai_error(body: Any, param: str | None = None) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param, error


async def test_sane_request_is_accepted(proxy: ProxyServer) -> None:
    status, body = await _post(proxy, orjson.dumps(GOOD))
    assert status == 200 and body["choices"][0]["message"]["content"] == "Echo: hi"


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"",
        b"null",
        b"[]",
        b'"text"',
        b"\xff\xfe{}",
        b'{"model": "ok", "messages": [{"role": "user", "content": "\xff"}]}',
    ],
    ids=["truncated", "empty", "null", "array", "string", "bad-utf8-bom", "bad-utf8-content"],
)
async def test_not_a_json_object(proxy: ProxyServer, raw: bytes) -> None:
    status, body = await _post(proxy, raw)
    assert status == 400
    _assert_openai_error(body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", 5),
        ("model", ""),
        ("model", [1, 2]),
        ("messages", "hi"),
        ("messages", []),
        ("messages", [1]),
        ("messages", [{"role": 5, "content": "x"}]),
        ("messages", [{"role": "user", "content": 5}]),
        ("messages", [{"role": "user", "content": [5]}]),
        ("messages", [{"role": "user", "content": "x", "name": 5}]),
        ("stream", "yes"),
        ("stream_options", 5),
        ("temperature", "hot"),
        ("temperature", 3),
        ("top_p", []),
        ("top_p", 1.5),
        ("max_tokens", "ten"),
        ("max_tokens", 0),
        ("max_tokens", -1),
        ("max_completion_tokens", True),
        ("n", 1.5),
        ("n", 0),
        ("n", 1000),
        ("presence_penalty", -3),
        ("frequency_penalty", {}),
        ("seed", "x"),
        ("stop", 5),
        ("stop", ["a", "b", "c", "d", "e"]),
        ("tools", {}),
        ("tools", [{"type": "function", "function": {"name": "bad name!"}}]),
        ("tool_choice", 5),
        ("tool_choice", "sometimes"),
        ("user", 5),
        ("logprobs", "yes"),
        ("top_logprobs", 50),
        ("timeout", 0),
        ("timeout", 10**9),
        ("fastest_response", "yes"),
        ("hedge_delay", "x"),
        ("hedge_delay", -1),
        ("hedge_delay", 1e300),
        ("api_key", "sk-steal"),
        ("api_base", "http://evil.invalid"),
        ("mock_response", {"not": "text"}),  # a text mock_response is LiteLLM's feature; anything else is not
        ("mock_delay", 1),
        ("fallbacks", 5),
        ("priority", "high"),
        ("num_retries", -1),
    ],
)
async def test_wrong_type_or_range_in_every_field(proxy: ProxyServer, field: str, value: Any) -> None:
    status, body = await _post(proxy, orjson.dumps({**GOOD, field: value}))
    assert status == 400, body
    _assert_openai_error(body, param=field)


async def test_a_thousand_model_names(proxy: ProxyServer) -> None:
    status, body = await _post(proxy, orjson.dumps({**GOOD, "model": ["ok"] * 1000, "fastest_response": True}))
    assert status == 400
    _assert_openai_error(body, param="model")
    status, body = await _post(proxy, orjson.dumps({**GOOD, "model": ",".join(["ok"] * 1000)}))
    assert status == 400
    _assert_openai_error(body, param="model")


@pytest.mark.parametrize("depth", [30_000, 2000, 300])
async def test_deeply_nested_json(proxy: ProxyServer, depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    raw = b'{"model": "ok", "messages": [{"role": "user", "content": "hi"}], "x_extra": ' + nested + b"}"
    status, body = await _post(proxy, raw)
    assert status == 400
    _assert_openai_error(body)


async def test_huge_message_under_and_over_the_limit(proxy: ProxyServer) -> None:
    text = "word " * 12_000  # 60 kB: under the 64 KiB limit of this proxy
    status, body = await _post(proxy, orjson.dumps({**GOOD, "messages": [{"role": "user", "content": text}]}))
    assert status == 200 and body["usage"]["prompt_tokens"] == 12_000
    text = "word " * 14_000
    status, body = await _post(proxy, orjson.dumps({**GOOD, "messages": [{"role": "user", "content": text}]}))
    assert status == 413
    _assert_openai_error(body)


async def test_body_over_the_limit_without_content_length(proxy: ProxyServer) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 8192  # JSON whitespace: only the size can be wrong

    async with (
        aiohttp.ClientSession() as http,
        http.post(proxy.base + "/chat/completions", data=chunks(), headers=AUTH) as resp,
    ):
        assert resp.status == 413
        assert "content-length" not in {k.lower() for k in resp.request_info.headers}
        _assert_openai_error(await resp.json())


async def test_headers_too_large(proxy: ProxyServer) -> None:
    headers = {f"x-filler-{i}": "v" * 4000 for i in range(10)}  # 40 kB in all
    status, body = await _post(proxy, orjson.dumps(GOOD), headers)
    assert status == 431
    _assert_openai_error(body)
    # uvicorn's httptools parser sets no limit of its own: the proxy refuses on every route
    huge = {"x-huge": "v" * 200_000}
    async with (
        aiohttp.ClientSession(max_field_size=1 << 20, max_line_size=1 << 20) as http,
        http.get(proxy.url + "/health/liveliness", headers=huge) as resp,
    ):
        assert resp.status == 431
        _assert_openai_error(await resp.json())
    status, _ = await _post(proxy, orjson.dumps(GOOD))
    assert status == 200


async def test_slowloris_body_times_out_and_others_are_served(proxy: ProxyServer) -> None:
    host, port = proxy.url.removeprefix("http://").split(":")
    slow: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for _ in range(20):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {KEY}\r\nContent-Length: 1000\r\n\r\n".encode()
            + b'{"model": '
        )
        await writer.drain()
        slow.append((reader, writer))
    try:
        started = time.monotonic()
        for _ in range(5):  # a normal client is served at once while 20 bodies trickle
            status, _ = await _post(proxy, orjson.dumps(GOOD))
            assert status == 200
        assert time.monotonic() - started < 1.0
        for reader, _ in slow:  # each slow body gets its 408 after the 1 s body timeout
            head = await asyncio.wait_for(reader.read(65536), 5.0)
            assert head.startswith(b"HTTP/1.1 408"), head[:100]
            body = orjson.loads(head.split(b"\r\n\r\n", 1)[1])
            _assert_openai_error(body)
        assert time.monotonic() - started < 4.0
    finally:
        for _, writer in slow:
            writer.close()
