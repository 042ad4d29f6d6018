"""The ``llmplex`` command as a subprocess: the offline demo, --model with several workers, clean shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import aiohttp
import pytest

from llmplex._child_output import wait_for_line
from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import serving_url

_START_TIMEOUT = 30.0


def _start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str, list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "llmplex", *args, "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stderr is not None
    url, lines = wait_for_line(process.stderr, serving_url, _START_TIMEOUT)
    if url is not None:
        return process, url, lines
    _stop(process)
    raise AssertionError(f"the proxy did not start: {' / '.join(lines)}")


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()


@pytest.fixture
def demo() -> Iterator[tuple[str, list[str]]]:
    process, url, lines = _start("--demo")
    try:
        yield url, lines
    finally:
        assert _stop(process) == 0


async def test_demo_runs_offline_and_races(demo: tuple[str, list[str]]) -> None:
    url, lines = demo
    assert any("started the emulator" in line for line in lines)
    assert any("authentication is OFF" in line for line in lines)
    body = {
        "model": "slow-model, fast-model",
        "messages": [{"role": "user", "content": "hi"}],
        "fastest_response": True,
    }
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with http.post(url + "/v1/chat/completions", json=body) as resp:
            assert resp.status == 200
            assert resp.headers["x-llmplex-model"] == "fast-model"
        body["model"] = "fast-model, claude-demo, broken-model"
        del body["fastest_response"]
        async with http.post(url + "/v1/chat/completions", json=body) as resp:
            answers = await resp.json()
    assert [("error" in a) for a in answers] == [False, False, True]
    assert answers[1]["choices"][0]["message"]["content"] == "Echo: hi"


async def test_single_model_with_workers(emulator: EmulatorServer) -> None:
    env = {"OPENAI_API_KEY": "test-key", "OPENAI_API_BASE": emulator.openai_base, "LITELLM_MASTER_KEY": "sk-cli"}
    process, url, _ = _start(
        "--model", "openai/cli-model", "--host", "127.0.0.1", "--num_workers", "2", "--header_timeout", "0.5", env=env
    )
    try:
        headers = {"Authorization": "Bearer sk-cli"}
        body = {"model": "anything", "messages": [{"role": "user", "content": "x"}]}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            for _ in range(100):  # workers start after the supervisor prints its line
                try:
                    async with http.get(url + "/health/readiness") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await _sleep(0.1)
            async with http.post(url + "/v1/chat/completions", json=body, headers=headers) as resp:
                assert resp.status == 200
                assert (await resp.json())["model"] == "cli-model"  # --model overrides the request's model
        # the workers got --header_timeout: a connection that sends nothing is closed after 0.5 s
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        started = time.monotonic()
        try:
            assert await asyncio.wait_for(reader.read(), 5.0) == b""
            assert time.monotonic() - started < 2.0
        finally:
            writer.close()
    finally:
        assert _stop(process) == 0


@pytest.mark.parametrize(
    "args", [["--header_timeout", "0"], ["--keepalive_timeout", "-1"], ["--max_header_bytes", "lots"]]
)
def test_connection_bounds_must_be_positive(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmplex", "--demo", *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2 and args[0] in done.stderr


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def test_server_processes_freeze_startup_objects_and_make_full_collections_rare() -> None:
    """In a fresh interpreter (it changes process-wide GC settings): what the CLI and each worker run."""
    code = (
        "import gc\n"
        "from llmplex.proxy.app import GC_THRESHOLDS, freeze_startup_objects\n"
        "assert gc.get_threshold() == (700, 10, 10)\n"
        "freeze_startup_objects()\n"
        "assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()\n"
        "assert gc.get_threshold() == GC_THRESHOLDS and GC_THRESHOLDS[2] > 10\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
