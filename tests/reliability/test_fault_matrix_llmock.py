"""Fault rows on ``llmock`` 0.2.2, an independent fault injector we did not write (``llmock serve`` subprocess).

Its scripted scenarios (``POST /_llmock/scenario``) cover retry-after, 5xx bursts and broken streams
with its own wire format, so llmplex is not only tested against its own emulator's idea of a fault.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from llmplex import AsyncClient, CompletionStream, ModelResponse
from llmplex.exceptions import APIConnectionError, APIError, RateLimitError, StreamError, Timeout
from tests.fixtures_proxy import ProxyServer, openai_model
from tests.reliability.leaks import no_leaks

MESSAGES = [{"role": "user", "content": "hi"}]
_START_S = 30.0


class Llmock:
    def __init__(self, url: str) -> None:
        self.url = url
        self.base = url + "/v1"

    async def scenario(self, *behaviors: dict[str, Any]) -> None:
        async with aiohttp.ClientSession() as http:
            async with http.delete(self.url + "/_llmock/scenario") as resp:
                assert resp.status < 300
            async with http.post(self.url + "/_llmock/scenario", json={"behaviors": list(behaviors)}) as resp:
                assert resp.status < 300, await resp.text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def llmock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Llmock]:
    exe = shutil.which("llmock", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("llmock is not installed (pip install llmock==0.2.2)")
    port = _free_port()
    log = tmp_path_factory.mktemp("llmock") / "llmock.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [exe, "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + _START_S
        while True:
            try:
                with urllib.request.urlopen(url + "/_llmock/scenario", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"llmock did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield Llmock(url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
async def sdk() -> AsyncIterator[AsyncClient]:
    async with no_leaks():
        client = AsyncClient(num_retries=0, timeout=10.0, stream_idle_timeout=1.0)
        try:
            yield client
        finally:
            await client.aclose()


async def complete(sdk: AsyncClient, llmock: Llmock, **options: Any) -> ModelResponse | CompletionStream:
    return await sdk.completion("openai/gpt-4o", MESSAGES, api_base=llmock.base, api_key="k", **options)


async def text_of(result: ModelResponse | CompletionStream) -> str:
    if isinstance(result, ModelResponse):
        return result.choices[0].message.content or ""
    async with result:
        return "".join([c.choices[0].delta.content or "" async for c in _chunks(result)])


async def _chunks(stream: CompletionStream) -> AsyncIterator[Any]:
    async for chunk in stream:
        if chunk.choices:
            yield chunk


async def test_429_retry_after_is_honoured(sdk: AsyncClient, llmock: Llmock) -> None:
    await llmock.scenario({"type": "fail", "status": 429, "retry_after": 1, "times": 1})
    started = time.monotonic()
    result = await complete(sdk, llmock, num_retries=1)
    elapsed = time.monotonic() - started
    assert "Simulated" in await text_of(result)
    assert elapsed >= 0.95  # llmock sends retry-after: 1 and retry-after-ms: 1000


async def test_429_exhausted(sdk: AsyncClient, llmock: Llmock) -> None:
    await llmock.scenario({"type": "fail", "status": 429, "retry_after": 0, "times": 5})
    with pytest.raises(RateLimitError):
        await complete(sdk, llmock, num_retries=1)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_burst_is_retried(sdk: AsyncClient, llmock: Llmock, status: int) -> None:
    await llmock.scenario({"type": "fail", "status": status, "times": 2})
    assert "Simulated" in await text_of(await complete(sdk, llmock, num_retries=2))


@pytest.mark.parametrize(
    ("kind", "error"),
    [("truncate", StreamError), ("malformed", StreamError), ("disconnect", APIError), ("stall", Timeout)],
)
async def test_broken_stream_is_a_typed_error(sdk: AsyncClient, llmock: Llmock, kind: str, error: type) -> None:
    await llmock.scenario({"type": "stream_fault", "kind": kind, "after_chunks": 1, "stall_seconds": 5})
    with pytest.raises(error):
        text = await text_of(await complete(sdk, llmock, stream=True))
        raise AssertionError(f"a silent short answer: {text!r}")


async def test_stall_before_headers(sdk: AsyncClient, llmock: Llmock) -> None:
    await llmock.scenario({"type": "delay", "seconds": 3})
    with pytest.raises((Timeout, APIConnectionError)):
        await complete(sdk, llmock, timeout=0.5)


async def test_proxy_passes_429_with_retry_after(proxy_factory: Any, llmock: Llmock) -> None:
    proxy: ProxyServer = proxy_factory({"model_list": [openai_model("gpt", "gpt-4o", llmock.base)]})
    await llmock.scenario({"type": "fail", "status": 429, "retry_after": 3, "times": 1})
    async with (
        no_leaks(),
        aiohttp.ClientSession() as http,
        http.post(proxy.base + "/chat/completions", json={"model": "gpt", "messages": MESSAGES}) as resp,
    ):
        assert resp.status == 429 and resp.headers["retry-after"] == "3"
        assert orjson.loads(await resp.read())["error"]["type"]
