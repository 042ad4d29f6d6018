"""How much CPU other processes (not the harness or its children) used while a scenario ran.

The machine may be shared; the load average cannot tell our load from theirs. A background thread samples
/proc/stat (all busy CPU time) and the CPU time of the harness's process tree once a second; the difference
is "foreign" CPU, reported in cores per scenario and in the report header.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _busy_ticks() -> int:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal


def _our_ticks(root: int) -> int:
    """CPU ticks of ``root`` and its live descendants, plus what reaped children left in cutime/cstime."""
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    total = 0
    for pid, ticks in times.items():
        p = pid
        for _ in range(64):  # bounded walk up the tree
            if p == root:
                total += ticks
                break
            p = parents.get(p, 0)
            if p <= 1:
                break
    return total


class InterferenceMonitor:
    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (monotonic time, foreign cores over the last interval)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-interference", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        root = os.getpid()
        last = (time.monotonic(), _busy_ticks(), _our_ticks(root))
        while not self._stop.wait(self.interval):
            now = (time.monotonic(), _busy_ticks(), _our_ticks(root))
            wall = now[0] - last[0]
            foreign = ((now[1] - last[1]) - (now[2] - last[2])) / CLOCK_TICKS / wall if wall > 0 else 0.0
            self.samples.append((now[0], max(0.0, foreign)))
            last = now

    def window(self, start: float, end: float) -> dict[str, float]:
        """Mean and max foreign CPU (cores) between two ``time.monotonic()`` readings."""
        values = [v for t, v in self.samples if start < t <= end + self.interval]
        if not values:
            return {"mean_cores": 0.0, "max_cores": 0.0, "samples": 0}
        return {"mean_cores": sum(values) / len(values), "max_cores": max(values), "samples": len(values)}
