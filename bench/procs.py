"""Child processes: start in their own process group (optionally pinned to a core), wait until ready, stop.

Every process the harness starts goes through ``ProcessRegistry`` so ``stop_all`` (called from a
``finally``) ends all of them, each by its own process group id.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


ALL_CORES = -1  # explicitly unpinned (the harness itself is pinned, and children inherit that)


def pin_prefix(core: int | None) -> list[str]:
    """``taskset -c N`` when pinning makes sense (>= 2 cores and taskset installed)."""
    cores = os.cpu_count() or 1
    if core is None or cores < 2 or not Path("/usr/bin/taskset").exists():
        return []
    return ["taskset", "-c", f"0-{cores - 1}" if core == ALL_CORES else str(core)]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    started_at: float
    cmd: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def group_pids(self) -> list[int]:
        """The pids of this process group (uvicorn workers, etc.)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.pid:  # field 5 of stat: pgrp
                pids.append(int(entry.name))
        return pids

    def rss_mb(self) -> float:
        """Resident set size of the whole process group, MiB."""
        total_kb = 0
        for pid in self.group_pids():
            try:
                pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
            total_kb += pages * PAGE_KB
        return total_kb / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process group so far (live members only)."""
        ticks = 0
        for pid in self.group_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / CLOCK_TICKS

    def stop(self, grace: float = 5.0) -> None:
        if self.popen.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.popen.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


class ProcessRegistry:
    """Owns every child process of one harness run."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Proc] = []

    def start(
        self,
        name: str,
        cmd: list[str],
        *,
        env: dict[str, str] | None = None,
        core: int | None = None,
        cwd: Path | None = None,
        stdin_pipe: bool = False,
    ) -> Proc:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        full = pin_prefix(core) + cmd
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                full,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
                stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            )
        proc = Proc(name, popen, log_path, time.perf_counter(), full)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()


class StartError(RuntimeError):
    """A child process died or did not become ready in time."""


def wait_for_line(proc: Proc, pattern: str, timeout: float) -> re.Match[str]:
    """Poll the log until ``pattern`` matches (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    regex = re.compile(pattern)
    while time.monotonic() < deadline:
        match = regex.search(proc.log_text())
        if match:
            return match
        if not proc.alive():
            raise StartError(f"{proc.name} exited with {proc.popen.returncode}: {tail(proc.log_text())}")
        time.sleep(0.01)
    raise StartError(f"{proc.name} not ready after {timeout:.0f} s: {tail(proc.log_text())}")


def wait_for_http(proc: Proc, url: str, timeout: float, headers: dict[str, str] | None = None) -> float:
    """Poll ``url`` until it answers 200; returns seconds since the process was started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise StartError(f"{proc.name} exited with {proc.popen.returncode}: {tail(proc.log_text())}")
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=1.0) as resp:
                if resp.status == 200:
                    return time.perf_counter() - proc.started_at
        except OSError:
            pass
        time.sleep(0.01)
    raise StartError(f"{proc.name}: {url} not healthy after {timeout:.0f} s: {tail(proc.log_text())}")


def tail(text: str, chars: int = 600) -> str:
    return text[-chars:].strip().replace("\n", " | ")
