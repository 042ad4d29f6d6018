"""Giving the memory of large response bodies back to the OS once they are freed.

A body is read as many ~64 KiB chunks; glibc serves those from its heap and, once they are freed, keeps
the pages (it only returns the top of the heap). Measured with 4 loops on a 300 MB body: 48 MiB idle,
~120 MiB while reading, still 111 MiB a second after the last one, 48 MiB after ``malloc_trim(0)``,
which took 3.7 ms. So a trim runs on the loop a second after large bodies were let go (coalesced: at
most one pending), and only once ``TRIM_AFTER`` bytes of them have been freed since the last one.
Not glibc (musl, macOS): nothing to call, nothing done.
"""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable

__all__ = ["MMAP_THRESHOLD", "TRIM_AFTER", "MemoryReturner", "fix_mmap_threshold"]

# Bytes of large bodies freed before a trim is worth its few milliseconds of a blocked loop.
TRIM_AFTER = 16 * 1024 * 1024
TRIM_DELAY_S = 1.0
# Allocations from this size up get pages of their own (mmap), given back to the OS when freed.
MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


def fix_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Pin glibc's mmap threshold (a server's choice for its own process; the SDK never calls it).

    glibc raises the threshold each time a large mmapped block is freed (up to 32 MiB), after which large
    body chunks come from the heap, fragment it and stay: the hostile bench's 300 MB body held 165 MiB of
    RSS at peak with a 64 MiB budget, 137 MiB with the threshold pinned at 128 KiB. Setting it explicitly
    also turns that growth off. Small allocations (nearly all of a proxy's) are not affected.
    """
    mallopt = _libc_function("mallopt")
    return bool(mallopt is not None and mallopt(_M_MMAP_THRESHOLD, size) == 1)


def _libc_function(name: str) -> Callable[..., int] | None:
    """A glibc function from the process's own symbols (without find_library's subprocesses); None elsewhere."""
    try:
        found: Callable[..., int] | None = getattr(ctypes.CDLL(None), name, None)
    except OSError:
        return None
    return found


class MemoryReturner:
    __slots__ = ("_freed", "_looked_up", "_pending", "_trim", "trims")

    def __init__(self) -> None:
        self._freed = 0
        self._pending = False
        self._looked_up = False
        self._trim: Callable[..., int] | None = None
        self.trims = 0

    def freed(self, count: int) -> None:
        """``count`` bytes of a large body are (or are about to be) garbage: trim soon if enough add up."""
        self._freed += count
        if self._freed < TRIM_AFTER or self._pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._pending = True
        loop.call_later(TRIM_DELAY_S, self._run)

    def _run(self) -> None:
        self._pending = False
        self._freed = 0
        trim = self._lookup()
        if trim is not None:
            trim(0)
            self.trims += 1

    def _lookup(self) -> Callable[[int], int] | None:
        if not self._looked_up:
            self._looked_up = True
            self._trim = _libc_function("malloc_trim")
        return self._trim
