"""The provider emulator as a session-scoped subprocess (``python -m llmplex.emulator --port 0``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from llmplex._child_output import wait_for_line

_READY = "LLMPLEX_EMULATOR_READY "
_START_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 5.0
_HTTP_TIMEOUT_S = 5.0

Stats = dict[str, int]


class EmulatorServer:
    """Handle on a running emulator: its URLs and its counters (sync and async flavours)."""

    def __init__(self, url: str, log_path: Path) -> None:
        self.url = url
        self.openai_base = url + "/v1"
        self._log_path = log_path

    def stats(self) -> Stats:
        return self._call("GET", "/_emulator/stats")

    def reset(self) -> Stats:
        return self._call("POST", "/_emulator/reset")

    async def astats(self) -> Stats:
        return await self._acall("GET", "/_emulator/stats")

    async def areset(self) -> Stats:
        return await self._acall("POST", "/_emulator/reset")

    async def wait_for(self, predicate: Callable[[Stats], bool], timeout: float = 2.0) -> Stats:
        """Poll the counters until ``predicate`` holds (disconnects are noticed asynchronously)."""
        deadline = time.monotonic() + timeout
        stats = await self.astats()
        while not predicate(stats):
            if time.monotonic() > deadline:
                raise AssertionError(f"emulator counters never matched within {timeout}s: {stats}")
            await asyncio.sleep(0.01)
            stats = await self.astats()
        return stats

    def log_text(self) -> str:
        return self._log_path.read_text(errors="replace")

    def _call(self, method: str, path: str) -> Stats:
        request = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(request, timeout=_HTTP_TIMEOUT_S) as response:
            result: Stats = json.loads(response.read())
        return result

    async def _acall(self, method: str, path: str) -> Stats:
        timeout = aiohttp.ClientTimeout(total=_HTTP_TIMEOUT_S)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, self.url + path) as response,
        ):
            response.raise_for_status()
            result: Stats = await response.json()
        return result


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) pairs of a raw SSE body (CRLF tolerated), for tests that read the wire directly."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = block.split("\n")
        name = next((line[7:] for line in lines if line.startswith("event: ")), None)
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        if data:
            events.append((name, data))
    return events


def read_ready_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    url, _ = wait_for_line(
        process.stdout, lambda line: line[len(_READY) :].strip() if line.startswith(_READY) else None, _START_TIMEOUT_S
    )
    if url is not None:
        return url
    raise RuntimeError(f"emulator did not become ready within {_START_TIMEOUT_S}s (exit code {process.poll()})")


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=_STOP_TIMEOUT_S)


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    with tempfile.TemporaryDirectory(prefix="llmplex-emulator-") as tmp:
        log_path = Path(tmp) / "emulator.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "llmplex.emulator", "--host", "127.0.0.1", "--port", "0"],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        try:
            url = read_ready_line(process)
            yield EmulatorServer(url, log_path)
        finally:
            _stop(process)
            if process.stdout is not None:
                process.stdout.close()


__all__ = ["EmulatorServer", "Stats", "emulator", "read_ready_line", "sse_events"]
