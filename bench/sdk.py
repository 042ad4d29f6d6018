"""Harness side of ``workers/sdk_worker.py``: one long-lived process per side, driven command by command.

Sides alternate round by round while each keeps its own process, so imports are paid once and CPU time
and peak RSS stay per side. The worker runs pinned to the system-under-test core.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.context import REPO, SUT_CORE, NotAvailable, RunContext
from bench.procs import Proc, tail

WORKER = REPO / "bench" / "workers" / "sdk_worker.py"
PREFIX = "BENCH_RESULT "


class SdkWorker:
    def __init__(self, ctx: RunContext, side: str) -> None:
        self.ctx = ctx
        self.side = side
        python: str | Path = ctx.litellm_python() if side == "litellm" else ctx.python
        env = ctx.child_env(LITELLM_LOCAL_MODEL_COST_MAP="True", OPENAI_API_KEY="sk-bench")
        self.proc: Proc = ctx.registry.start(
            f"sdk-{side}",
            [str(python), str(WORKER), "--side", side],
            env=env,
            core=SUT_CORE,
            cwd=REPO,
            stdin_pipe=True,
        )
        self.seen = 0
        self.ready = self._next(timeout=120)
        if "error" in self.ready:
            raise NotAvailable(f"{side} worker failed to start: {self.ready['error']}")

    def _results(self) -> list[str]:
        return [line[len(PREFIX) :] for line in self.proc.log_text().splitlines() if line.startswith(PREFIX)]

    def _next(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            results = self._results()
            if len(results) > self.seen:
                self.seen += 1
                data: dict[str, Any] = json.loads(results[self.seen - 1])
                return data
            if not self.proc.alive():
                return {"error": f"{self.side} worker exited: {tail(self.proc.log_text(), 300)}"}
            time.sleep(0.005)
        self.proc.stop()
        return {"error": f"timed out after {timeout:.0f} s"}

    def call(self, op: str, args: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        assert self.proc.popen.stdin is not None
        if not self.proc.alive():
            return {"error": f"{self.side} worker is not running (an earlier timeout or crash)"}
        self.proc.popen.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
        self.proc.popen.stdin.flush()
        return self._next(timeout or self.ctx.settings.op_timeout)

    def close(self) -> None:
        if self.proc.alive() and self.proc.popen.stdin is not None:
            try:
                self.proc.popen.stdin.write(b'{"op": "exit"}\n')
                self.proc.popen.stdin.close()
                self.proc.popen.wait(timeout=10)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        self.ctx.registry.stop(self.proc)


def sdk_available(side: str) -> None:
    """Raise NotAvailable when the llmplex SDK pieces a scenario needs have not landed."""
    if side == "llmplex-batch" and not (REPO / "src" / "llmplex" / "batch.py").exists():
        raise NotAvailable("llmplex.batch (batch_completion / batch_completion_models) is not available yet")
    if side == "llmplex-concurrency" and not (REPO / "src" / "llmplex" / "_concurrency.py").exists():
        raise NotAvailable("llmplex._concurrency (race_first) is not available yet")
