"""The offline demo: a config whose models are served by the emulator, which the CLI starts itself.

A config asks for this with ``llmplex_settings: {start_emulator: true}``; its ``api_base`` values
then read ``os.environ/LLMPLEX_EMULATOR_URL`` or ``os.environ/LLMPLEX_EMULATOR_OPENAI_BASE``.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

from llmplex._child_output import wait_for_line

__all__ = ["EMULATOR_ENV", "READY_PREFIX", "demo_config_path", "start_emulator"]

EMULATOR_ENV = "LLMPLEX_EMULATOR_URL"
OPENAI_BASE_ENV = "LLMPLEX_EMULATOR_OPENAI_BASE"
READY_PREFIX = "LLMPLEX_EMULATOR_READY "


def demo_config_path() -> Path:
    return Path(str(resources.files("llmplex.proxy").joinpath("demo.yaml")))


def start_emulator(timeout: float = 20.0) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start ``python -m llmplex.emulator`` on a free loopback port; return it and the env entries for the config."""
    process = subprocess.Popen(
        [sys.executable, "-m", "llmplex.emulator", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = _wait_ready(process, timeout)
    except BaseException:
        stop(process)
        raise
    return process, {EMULATOR_ENV: url, OPENAI_BASE_ENV: url + "/v1"}


def _wait_ready(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    url, _ = wait_for_line(process.stdout, _ready_url, timeout)
    if url is None:
        raise RuntimeError(f"the emulator did not start within {timeout:g}s (exit code {process.poll()})")
    return url


def _ready_url(line: str) -> str | None:
    return line[len(READY_PREFIX) :].strip() if line.startswith(READY_PREFIX) else None


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if process.stdout is not None:
        process.stdout.close()
