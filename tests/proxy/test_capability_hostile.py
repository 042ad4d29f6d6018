"""Malformed bodies on the endpoints beyond chat: always an answer in the endpoint's own error format (never a
500, never a hang), and nothing reaches the upstream for what can be refused up front."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model

DEEP: Any = "x"
for _ in range(300):
    DEEP = [DEEP]


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    return proxy_factory({"model_list": [openai_model("m", "m", emulator.openai_base)]})


CASES: list[tuple[str, Any]] = [
    ("/v1/embeddings", {"model": "m", "input": {"a": 1}}),
    ("/v1/embeddings", {"model": "m", "input": "a", "dimensions": "8"}),
    ("/v1/embeddings", {"model": "m", "input": "a", "encoding_format": 5}),
    ("/v1/embeddings", {"model": 5, "input": "a"}),
    ("/v1/embeddings", {"model": "m", "input": [[1, -2]]}),
    ("/v1/embeddings", {"model": "m", "input": [[1.5]]}),
    ("/v1/embeddings", [1, 2]),
    ("/v1/embeddings", "not an object"),
    ("/v1/embeddings", {"model": "m", "input": "a", "user": DEEP}),
    ("/v1/completions", {"model": "m", "prompt": None}),
    ("/v1/completions", {"model": "m", "prompt": "x", "stream": "yes"}),
    ("/v1/completions", {"model": "m", "prompt": "x", "temperature": "hot"}),
    ("/v1/completions", {"model": "m, m", "prompt": "x"}),
    ("/v1/completions", {"model": "m", "prompt": [["a"]]}),
    ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 5}]}),
    ("/v1/messages", {"model": "m", "max_tokens": True, "messages": [{"role": "user", "content": "x"}]}),
    ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "system": 5}),
    ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "stream": 1}),
    (
        "/v1/messages",
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": 3}]}]},
    ),
    ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools": [5]}),
    ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "audio"}]}]}),
    ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "hedge_delay": 1}),
    (
        "/v1/messages",
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "stop_sequences": "E"},
    ),
    (
        "/v1/messages",
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tool_choice": "a"},
    ),
    ("/v1/messages/count_tokens", {"model": "m"}),
    ("/v1/messages/count_tokens", {"model": "m, m", "messages": [{"role": "user", "content": "x"}]}),
]


@pytest.mark.parametrize(("path", "body"), CASES)
async def test_refused_in_the_endpoint_format(
    proxy: ProxyServer, emulator: EmulatorServer, path: str, body: Any
) -> None:
    await emulator.areset()
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.post(proxy.url + path, json=body) as resp,
    ):
        assert resp.status == 400, await resp.text()
        error = await resp.json()
    if path.startswith("/v1/messages"):
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    else:
        assert error["error"]["type"] == "invalid_request_error"
    assert (await emulator.astats())["received"] == 0
