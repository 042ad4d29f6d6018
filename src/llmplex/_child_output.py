"""Waiting for a line from a child process's pipe (a server announcing its address), bounded in time.

Reads the file descriptor directly: a buffered ``readline()`` may pull two lines out of the pipe at once,
after which ``select()`` waits for more while the wanted line sits unread in Python's buffer.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable
from typing import IO, Any, TypeVar

__all__ = ["wait_for_line"]

T = TypeVar("T")


def wait_for_line(stream: IO[Any], found: Callable[[str], T | None], timeout: float) -> tuple[T | None, list[str]]:
    """``(found(line), lines read)`` for the first line where ``found`` is not None; ``(None, lines)`` when the
    pipe closes or ``timeout`` seconds pass first. Lines are decoded as UTF-8 and keep no newline."""
    fd = stream.fileno()
    lines: list[str] = []
    pending = b""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0 and select.select([fd], [], [], left)[0]:
        data = os.read(fd, 65536)
        if not data:
            break
        *complete, pending = (pending + data).split(b"\n")
        for raw in complete:
            line = raw.decode(errors="replace").rstrip("\r")
            lines.append(line)
            value = found(line)
            if value is not None:
                return value, lines
    return None, lines
