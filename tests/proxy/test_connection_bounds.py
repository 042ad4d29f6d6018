"""Connection-level bounds (issue 17 #4, #5), with raw sockets against a real uvicorn on loopback.

The proxy runs with short bounds (head timeout 0.5 s, keep-alive 1 s) so the tests are quick; the
defaults (10 s, 5 s) differ only in the numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model, to_config

HEAD_TIMEOUT = 0.5
KEEPALIVE = 1
MAX_HEAD = 64 * 1024
IO_TIMEOUT = 5.0
GET_HEALTH = b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def proxy(emulator: EmulatorServer) -> Any:
    config = to_config({"model_list": [openai_model("ok", "ok", emulator.openai_base)]})
    server = ProxyServer(
        config, header_timeout=HEAD_TIMEOUT, timeout_keep_alive=KEEPALIVE, max_header_bytes=MAX_HEAD
    ).start()
    yield server
    server.stop()


async def _connect(proxy: ProxyServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def _closed_after(reader: asyncio.StreamReader, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closes the connection (reading what it sent), at most ``limit``."""
    started = time.monotonic()
    data = b""
    while True:
        chunk = await asyncio.wait_for(reader.read(65536), limit)
        if not chunk:
            return time.monotonic() - started, data
        data += chunk


async def _health_ms(proxy: ProxyServer) -> float:
    started = time.monotonic()
    async with aiohttp.ClientSession() as http, http.get(proxy.url + "/health/liveliness") as resp:
        assert resp.status == 200
    return (time.monotonic() - started) * 1000


async def test_a_connection_that_sends_nothing_is_closed(proxy: ProxyServer) -> None:
    reader, writer = await _connect(proxy)
    try:
        waited, data = await _closed_after(reader, IO_TIMEOUT)
        assert data == b""  # nothing was asked, nothing is answered
        assert HEAD_TIMEOUT * 0.8 <= waited <= HEAD_TIMEOUT + 1.0
    finally:
        writer.close()


async def test_a_head_sent_byte_by_byte_is_cut_with_a_408(proxy: ProxyServer) -> None:
    reader, writer = await _connect(proxy)
    started = time.monotonic()

    async def trickle() -> None:
        for byte in GET_HEALTH[:-2]:  # never completes: one byte every 50 ms, for up to 2 s
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(trickle())
    try:
        _, data = await _closed_after(reader, IO_TIMEOUT)
        assert time.monotonic() - started <= HEAD_TIMEOUT + 1.0
        assert data.startswith(b"HTTP/1.1 408 "), data[:80]
        assert b'"error"' in data and b"connection: close" in data.lower()
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
        writer.close()


async def test_a_slow_but_timely_head_is_served(proxy: ProxyServer) -> None:
    reader, writer = await _connect(proxy)
    try:
        for part in (GET_HEALTH[:10], GET_HEALTH[10:25], GET_HEALTH[25:]):
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(HEAD_TIMEOUT / 5)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n"), IO_TIMEOUT)
        assert head.startswith(b"HTTP/1.1 200")
    finally:
        writer.close()


async def test_kept_alive_connections_are_bounded_idle_and_mid_head(proxy: ProxyServer) -> None:
    # idle after a request: closed after the keep-alive timeout
    reader, writer = await _connect(proxy)
    try:
        writer.write(GET_HEALTH)
        await writer.drain()
        await asyncio.wait_for(reader.readuntil(b'"I\'m alive!"'), IO_TIMEOUT)
        waited, _ = await _closed_after(reader, IO_TIMEOUT)
        assert KEEPALIVE * 0.8 <= waited <= KEEPALIVE + 1.0
    finally:
        writer.close()
    # a second request whose head never completes: a 408 after the head timeout
    reader, writer = await _connect(proxy)
    try:
        writer.write(GET_HEALTH + GET_HEALTH[:20])
        await writer.drain()
        started = time.monotonic()
        _, data = await _closed_after(reader, IO_TIMEOUT)
        assert time.monotonic() - started <= HEAD_TIMEOUT + 1.0
        first, second = data.split(b'"I\'m alive!"', 1)
        assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 408"), data
    finally:
        writer.close()


async def test_a_later_head_gets_its_own_full_bound(proxy: ProxyServer) -> None:
    # the head timer is not moved per request: armed for the first request, it fires during the second
    # request's head and must re-arm for what that head has left, neither cut it short nor let it run on
    reader, writer = await _connect(proxy)
    try:
        writer.write(GET_HEALTH)
        await writer.drain()
        await asyncio.wait_for(reader.readuntil(b'"I\'m alive!"'), IO_TIMEOUT)
        await asyncio.sleep(HEAD_TIMEOUT * 0.6)
        for part in (GET_HEALTH[:10], GET_HEALTH[10:25], GET_HEALTH[25:]):  # spans the first timer's firing
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(HEAD_TIMEOUT / 5)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n"), IO_TIMEOUT)
        assert head.startswith(b"HTTP/1.1 200")
        await asyncio.wait_for(reader.readuntil(b'"I\'m alive!"'), IO_TIMEOUT)
        await asyncio.sleep(HEAD_TIMEOUT * 0.6)
        writer.write(GET_HEALTH[:20])  # a third head that never completes
        await writer.drain()
        started = time.monotonic()
        _, data = await _closed_after(reader, IO_TIMEOUT)
        waited = time.monotonic() - started
        assert HEAD_TIMEOUT * 0.9 <= waited <= HEAD_TIMEOUT + 1.0, waited
        assert data.startswith(b"HTTP/1.1 408"), data
    finally:
        writer.close()


async def test_hundreds_of_idle_sockets_do_not_stay_or_block_health(proxy: ProxyServer) -> None:
    sockets = [await _connect(proxy) for _ in range(200)]
    try:
        sockets[-1][1].write(GET_HEALTH[:15])  # some half-sent heads among them
        assert await _health_ms(proxy) < 500
        results = await asyncio.gather(*(_closed_after(reader, IO_TIMEOUT) for reader, _ in sockets))
        assert max(waited for waited, _ in results) <= HEAD_TIMEOUT + 2.0  # every one closed by the server
    finally:
        for _, writer in sockets:
            writer.close()
    assert await _health_ms(proxy) < 500


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_a_huge_header_is_refused_before_it_is_buffered(proxy: ProxyServer) -> None:
    """32 MB of header: the server answers 431 after ~64 KiB; memory and /health are unaffected."""
    reader, writer = await _connect(proxy)
    rss_before = _rss_bytes()
    answer = asyncio.create_task(_closed_after(reader, 15.0))
    chunk = b"v" * 65536
    sent = 0
    health: list[float] = []
    try:
        writer.write(b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\nx-huge: ")
        with contextlib.suppress(ConnectionError):
            for i in range(512):  # 32 MB, unless the server answers first
                if answer.done():
                    break
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
                sent += len(chunk)
                if i % 64 == 0:
                    health.append(await _health_ms(proxy))
        _, data = await answer
        assert data.startswith(b"HTTP/1.1 431 "), data[:80]
        assert b'"error"' in data
    finally:
        writer.close()
    assert sent < 16 * 1024 * 1024  # refused long before the client was done (kernel buffers take some)
    assert _rss_bytes() - rss_before < 16 * 1024 * 1024
    assert max(health, default=0.0) < 500
    assert await _health_ms(proxy) < 500
