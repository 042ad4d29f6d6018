"""Emulator behaviour switches: directives, faults, timing, the counters race tests rely on, and the CLI."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from llmplex.emulator import Settings, parse_directives
from tests.fixtures_emulator import EmulatorServer, read_ready_line, sse_events

USER: Any = [{"role": "user", "content": "hello there"}]
AUTH = {"authorization": "Bearer k"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


# --- directives -----------------------------------------------------------------------------------------------


def test_directives_come_from_the_model_name_and_headers() -> None:
    settings = Settings(latency_ms=7, chunks=4, chunk_delay_ms=3)
    plain = parse_directives("gpt-4o-mini-2024-07-18", {}, settings)
    assert (plain.delay_ms, plain.chunks, plain.chunk_delay_ms, plain.faulty, plain.tool) == (7, 4, 3, False, False)
    parsed = parse_directives("m-status-429-retryafter-1-times-2-fault-stall-tool-ttft-5", {}, settings)
    assert (parsed.status, parsed.retry_after, parsed.times, parsed.fault, parsed.tool, parsed.ttft_ms) == (
        429,
        1,
        2,
        "stall",
        True,
        5,
    )
    headers = {"x-emulator-delay": "50", "x-emulator-fault": "reset", "x-emulator-chunks": "0", "x-other": "1"}
    overridden = parse_directives("fast-delay-10", headers, settings)
    assert (overridden.delay_ms, overridden.fault, overridden.chunks) == (50, "reset", 1)
    assert parse_directives("m-status-200-fault-bogus", {}, settings).faulty is False


# --- faults and counters ----------------------------------------------------------------------------------------


async def test_counters_and_client_disconnects(http: aiohttp.ClientSession, emulator: EmulatorServer) -> None:
    url, auth = emulator.openai_base + "/chat/completions", AUTH
    await emulator.areset()
    for _ in range(3):
        async with http.post(url, json={"model": "m", "messages": USER}, headers=auth) as response:
            await response.read()
    assert await emulator.astats() == {
        "received": 3,
        "completed": 3,
        "disconnected": 0,
        "in_flight": 0,
        "redirected": 0,
        "redirected_with_key": 0,
    }

    # a client leaving mid-stream (after the first content chunk of a slow stream)
    body = {"model": "m-chunkdelay-300", "messages": USER, "stream": True}
    async with http.post(url, json=body, headers=auth) as response:
        await response.content.readuntil(b"\n\n")  # the role chunk (prelude)
        await response.content.readuntil(b"\n\n")  # the first content chunk
        assert (await emulator.astats())["in_flight"] == 1
        response.close()
    await emulator.wait_for(lambda s: s["disconnected"] == 1 and s["in_flight"] == 0)

    # a client giving up while the emulator is still waiting to send headers: noticed at once
    with pytest.raises(asyncio.TimeoutError):
        await http.post(
            url,
            json={"model": "m-delay-5000", "messages": USER},
            headers=auth,
            timeout=aiohttp.ClientTimeout(total=0.2),
        )
    gave_up = time.monotonic()
    stats = await emulator.wait_for(lambda s: s["disconnected"] == 2, timeout=1.0)
    assert time.monotonic() - gave_up < 0.5
    assert stats == {
        "received": 5,
        "completed": 3,
        "disconnected": 2,
        "in_flight": 0,
        "redirected": 0,
        "redirected_with_key": 0,
    }


@pytest.mark.parametrize("fault", ["stall", "stallheaders"])
async def test_stalls_last_until_the_client_leaves(
    http: aiohttp.ClientSession, emulator: EmulatorServer, fault: str
) -> None:
    await emulator.areset()
    body = {"model": f"m-fault-{fault}", "messages": USER, "stream": True}
    timeout = aiohttp.ClientTimeout(total=0.3)
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            emulator.openai_base + "/chat/completions",
            json=body,
            headers=AUTH,
            timeout=timeout,
        ) as response:
            await response.read()
    await emulator.wait_for(lambda s: s["disconnected"] == 1 and s["in_flight"] == 0)


async def test_truncate_malformed_and_reset(http: aiohttp.ClientSession, emulator: EmulatorServer) -> None:
    url, auth = emulator.openai_base + "/chat/completions", AUTH
    stream = {"messages": USER, "stream": True}
    async with http.post(url, json={**stream, "model": "m-fault-truncate"}, headers=auth) as response:
        events = sse_events(await response.text())
    assert len(events) == 3 and "[DONE]" not in {data for _, data in events}  # role chunk + 2 content chunks
    async with http.post(url, json={**stream, "model": "m-fault-malformed"}, headers=auth) as response:
        datas = [data for _, data in sse_events(await response.text())]
    with pytest.raises(json.JSONDecodeError):
        json.loads(datas[2])
    assert datas[-1] == "[DONE]"
    async with http.post(url, json={"messages": USER, "model": "m-fault-malformed"}, headers=auth) as response:
        assert response.status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(await response.text())
    for model, streaming in (("m-fault-reset", True), ("m-fault-reset", False)):
        with pytest.raises(aiohttp.ClientPayloadError):
            async with http.post(
                url, json={"messages": USER, "model": model, "stream": streaming}, headers=auth
            ) as response:
                await response.read()
    assert "Traceback" not in emulator.log_text() and "ASGI callable" not in emulator.log_text()


async def test_ttft_holds_the_first_content_chunk(http: aiohttp.ClientSession, emulator: EmulatorServer) -> None:
    body = {"model": "m-ttft-200-chunkdelay-100", "messages": USER, "stream": True}
    async with http.post(emulator.openai_base + "/chat/completions", json=body, headers=AUTH) as response:
        await response.content.readuntil(b"\n\n")  # the role chunk is flushed with the headers, before the wait
        role_at = time.monotonic()
        await response.content.readuntil(b"\n\n")
        first_content_at = time.monotonic()
        await response.content.readuntil(b"\n\n")
        second_content_at = time.monotonic()
    # lower bounds only: a loaded machine can stretch gaps, never shrink them
    assert first_content_at - role_at >= 0.19
    assert second_content_at - first_content_at >= 0.09


def test_cli_settings_and_clean_sigterm_exit() -> None:
    command = [sys.executable, "-m", "llmplex.emulator", "--port", "0", "--latency-ms", "150", "--chunks", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = read_ready_line(process)
        body = json.dumps({"model": "m", "messages": USER, "stream": True}).encode()
        headers = {"content-type": "application/json", "authorization": "Bearer k"}
        request = urllib.request.Request(url + "/v1/chat/completions", data=body, headers=headers, method="POST")
        started = time.monotonic()
        with urllib.request.urlopen(request, timeout=5) as response:
            text = response.read().decode()
        assert time.monotonic() - started >= 0.15
        assert len(sse_events(text)) == 5  # role, 2 content chunks, finish, [DONE]
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr


def test_cli_keep_alive_closes_idle_connections_after_the_set_time() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "llmplex.emulator", "--port", "0", "--keep-alive", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        host, port = read_ready_line(process).removeprefix("http://").split(":")
        body = json.dumps({"model": "m", "messages": USER}).encode()
        request = (
            f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer k\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode() + body
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(request)
            assert _read_response(conn).startswith(b"HTTP/1.1 200")
            idle_from = time.monotonic()
            time.sleep(0.3)
            conn.settimeout(0.01)
            with pytest.raises(TimeoutError):  # still open: idle for less than the keep-alive
                conn.recv(1)
            conn.settimeout(5)
            assert conn.recv(1) == b""  # the server closed it
            assert 0.3 <= time.monotonic() - idle_from < 4.0
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)


def test_cli_rejects_a_keep_alive_out_of_range() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmplex.emulator", "--keep-alive", "0"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2 and "--keep-alive" in done.stderr and "Traceback" not in done.stderr


def _read_response(conn: socket.socket) -> bytes:
    """One whole HTTP/1.1 response with a Content-Length body (it may arrive in several segments)."""
    data = b""
    for _ in range(1000):  # bounded; each recv returns at least one byte or raises on the timeout
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            lengths = [
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if b":" in line and line.split(b":", 1)[0].strip().lower() == b"content-length"
            ]
            length = lengths[0]
            if len(body) >= length:
                return data
        chunk = conn.recv(65536)
        assert chunk, f"connection closed mid-response: {data!r}"
        data += chunk
    raise AssertionError("response never completed")
