"""``no_leaks()``: after a fault, nothing is left behind: no asyncio task, no upstream connection, no fd."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator

from tests.fixtures_emulator import EmulatorServer

FD_TOLERANCE = 2  # a lazily created resolver or selector fd may appear once and stay
SETTLE_S = 3.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@contextlib.asynccontextmanager
async def no_leaks(emulator: EmulatorServer | None = None, settle: float = SETTLE_S) -> AsyncIterator[None]:
    """Counts tasks of this loop, the emulator's in-flight requests and this process's fds around a block."""
    if emulator is not None:
        await emulator.wait_for(lambda s: s["in_flight"] == 0, timeout=SETTLE_S)
    tasks = asyncio.all_tasks()
    fds = open_fds()
    yield
    if emulator is not None:  # the upstream saw every connection end
        await emulator.wait_for(lambda s: s["in_flight"] == 0, timeout=SETTLE_S)
    deadline = time.monotonic() + settle
    while True:
        extra = asyncio.all_tasks() - tasks - {asyncio.current_task()}
        grown = open_fds() - fds
        if (not extra and grown <= FD_TOLERANCE) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert not extra, f"tasks left behind: {extra}"
    assert grown <= FD_TOLERANCE, f"{grown} file descriptors left open"
