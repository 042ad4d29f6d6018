"""Helpers shared by the SDK batch and hedging tests (the fixtures live in tests/fixtures_sdk.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any


def conv(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def prompts(n: int, prefix: str = "p") -> list[list[dict[str, Any]]]:
    return [conv(f"{prefix}{i}") for i in range(n)]


async def wait_stats(emulator: Any, key: str, value: int, timeout: float = 2.0) -> float:
    """Poll the emulator until ``stats[key] >= value``; return how long it took."""
    t0 = time.perf_counter()
    while True:
        stats = await emulator.astats()
        if stats[key] >= value:
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            raise AssertionError(f"{key} stayed at {stats[key]} < {value}: {stats}")
        await asyncio.sleep(0.01)
