"""SIGTERM on a real ``llmplex --config`` process with streams in flight.

Within the grace period: no new connections, every in-flight request and stream finishes whole,
exit status 0. Past it: the streams are cut, the upstream connections are closed (the emulator sees
the disconnects), and the exit status is still 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from llmplex._child_output import wait_for_line
from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import serving_url

MESSAGES = [{"role": "user", "content": "a b c"}]
_START_TIMEOUT = 30.0
_LOOPBACK = ("--host", "127.0.0.1", "--port", "0")


class Proxy:
    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url


def _config(tmp_path: Path, emulator: EmulatorServer) -> Path:
    path = tmp_path / "config.yaml"
    entries = {
        "short-stream": "short-chunks-6-chunkdelay-200",
        "long-stream": "long-chunks-100-chunkdelay-100",
        "slow": "slow-delay-800",
    }
    lines = ["model_list:"]
    for name, model in entries.items():
        lines += [
            f"  - model_name: {name}",
            "    litellm_params:",
            f"      model: openai/{model}",
            f"      api_base: {emulator.openai_base}",
            "      api_key: test-key",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _start(config: Path, grace: float) -> Proxy:
    process = subprocess.Popen(
        [sys.executable, "-m", "llmplex", "--config", str(config), *_LOOPBACK, "--graceful-timeout", str(grace)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ),
    )
    assert process.stderr is not None
    url, lines = wait_for_line(process.stderr, serving_url, _START_TIMEOUT)
    if url is not None:
        return Proxy(process, url)
    process.kill()
    process.wait(timeout=5)
    raise AssertionError(f"the proxy did not start: {' / '.join(lines)}")


@pytest.fixture
def proxies() -> Iterator[list[Proxy]]:
    started: list[Proxy] = []
    yield started
    for proxy in started:
        if proxy.process.poll() is None:
            proxy.process.kill()
        proxy.process.wait(timeout=5)
        if proxy.process.stderr is not None:
            proxy.process.stderr.close()


async def _read_stream(http: aiohttp.ClientSession, url: str, model: str, first: asyncio.Event) -> list[bytes]:
    lines: list[bytes] = []
    body = {"model": model, "messages": MESSAGES, "stream": True}
    try:
        async with http.post(url + "/v1/chat/completions", json=body) as resp:
            assert resp.status == 200
            async for line in resp.content:
                if line.strip():
                    lines.append(line.strip())
                    first.set()
    except aiohttp.ClientError:
        lines.append(b"<connection lost>")
    return lines


async def _wait_exit(process: subprocess.Popen[str], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        assert time.monotonic() < deadline, "the proxy did not exit"
        await asyncio.sleep(0.05)
    return process.returncode


async def _refuses_connections(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 1.0)
    except OSError:
        return True
    writer.close()
    return False


async def test_sigterm_lets_in_flight_streams_finish(
    tmp_path: Path, emulator: EmulatorServer, proxies: list[Proxy]
) -> None:
    proxy = _start(_config(tmp_path, emulator), grace=10)
    proxies.append(proxy)
    await emulator.wait_for(lambda s: s["in_flight"] == 0, timeout=3.0)
    before = await emulator.astats()
    async with aiohttp.ClientSession() as http:
        events = [asyncio.Event() for _ in range(3)]
        streams = [asyncio.ensure_future(_read_stream(http, proxy.url, "short-stream", e)) for e in events]
        plain_body: dict[str, Any] = {"model": "slow", "messages": MESSAGES}
        plain = asyncio.ensure_future(http.post(proxy.url + "/v1/chat/completions", json=plain_body))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 10)
        await emulator.wait_for(lambda s: s["received"] - before["received"] >= 4)
        signalled = time.monotonic()
        proxy.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        assert await _refuses_connections(proxy.url)  # no new connections while draining
        results = await asyncio.wait_for(asyncio.gather(*streams), 10)
        response = await asyncio.wait_for(plain, 10)
        assert response.status == 200
        assert (await response.json())["choices"][0]["message"]["content"] == "Echo: a b c"
        response.release()
    for lines in results:
        assert lines[-1] == b"data: [DONE]", lines
        assert sum(1 for line in lines if b'"content":"' in line and b'"content":""' not in line) == 6
    assert await _wait_exit(proxy.process, 10) == 0
    assert time.monotonic() - signalled < 5
    stats = await emulator.wait_for(lambda s: s["in_flight"] == 0, timeout=3.0)
    assert stats["completed"] - before["completed"] == 4
    assert stats["disconnected"] == before["disconnected"]


async def test_grace_period_exceeded_closes_upstreams_and_exits_zero(
    tmp_path: Path, emulator: EmulatorServer, proxies: list[Proxy]
) -> None:
    proxy = _start(_config(tmp_path, emulator), grace=0.5)
    proxies.append(proxy)
    await emulator.wait_for(lambda s: s["in_flight"] == 0, timeout=3.0)
    before = await emulator.astats()
    async with aiohttp.ClientSession() as http:
        events = [asyncio.Event() for _ in range(2)]
        streams = [asyncio.ensure_future(_read_stream(http, proxy.url, "long-stream", e)) for e in events]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 10)
        signalled = time.monotonic()
        proxy.process.send_signal(signal.SIGTERM)
        assert await _wait_exit(proxy.process, 10) == 0
        exited = time.monotonic() - signalled
        results = await asyncio.wait_for(asyncio.gather(*streams), 10)
    assert 0.4 < exited < 3.0  # waited for the grace period, not for the 10 s streams
    for lines in results:
        assert lines[-1] != b"data: [DONE]"  # cut, and the client can tell
    stats = await emulator.wait_for(
        lambda s: s["in_flight"] == 0 and s["disconnected"] - before["disconnected"] == 2, timeout=3.0
    )
    assert stats["completed"] == before["completed"]
