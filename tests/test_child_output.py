"""``wait_for_line``: finds a line that arrived in the same pipe read as the one before it, and is bounded in time."""

from __future__ import annotations

import subprocess
import sys
import time

from llmplex._child_output import wait_for_line

# two lines in one write, then silence: a buffered readline() + select() loop would miss the second line
_TWO_LINES_THEN_SLEEP = (
    "import sys, time; sys.stdout.write('warming up\\nREADY 42\\n'); sys.stdout.flush(); time.sleep(30)"
)


def _child(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)


def _end(child: subprocess.Popen[bytes]) -> None:
    child.kill()
    child.wait(timeout=10)
    assert child.stdout is not None
    child.stdout.close()


def _ready(line: str) -> str | None:
    return line.removeprefix("READY ") if line.startswith("READY ") else None


def test_a_line_read_together_with_the_one_before_is_found_at_once() -> None:
    child = _child(_TWO_LINES_THEN_SLEEP)
    try:
        assert child.stdout is not None
        started = time.monotonic()
        value, lines = wait_for_line(child.stdout, _ready, timeout=10.0)
        assert value == "42" and lines == ["warming up", "READY 42"]
        assert time.monotonic() - started < 5.0
    finally:
        _end(child)


def test_gives_up_at_the_timeout_or_when_the_pipe_closes() -> None:
    child = _child("import time; print('nothing useful', flush=True); time.sleep(30)")
    try:
        assert child.stdout is not None
        started = time.monotonic()
        assert wait_for_line(child.stdout, _ready, timeout=0.5) == (None, ["nothing useful"])
        assert 0.4 < time.monotonic() - started < 5.0
    finally:
        _end(child)
    closed = _child("print('bye')")
    assert closed.stdout is not None
    assert wait_for_line(closed.stdout, _ready, timeout=10.0) == (None, ["bye"])
    _end(closed)
