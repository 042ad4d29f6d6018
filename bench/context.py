"""The shared state of one harness run: settings, child processes, and lazily started pieces.

Scenarios ask the context for what they need (the upstream, a proxy, the LiteLLM venv, wrk); a piece
that cannot be had raises ``NotAvailable`` and the scenario is reported as "could not run: <reason>".
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import setup_env
from bench.procs import Proc, ProcessRegistry, StartError, wait_for_line

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
LOAD_CORE = 0  # upstream, load generator and the harness itself
SUT_CORE = 1  # the system under test (an SDK worker or a proxy)
UPSTREAM_KEEP_ALIVE_S = 600


class NotAvailable(Exception):
    """A piece a scenario needs is missing; the report says so instead of printing a number."""


@dataclass(frozen=True)
class Settings:
    quick: bool
    rounds: int
    batch_sizes: tuple[int, int]
    batch_concurrency: int
    batch_warmup: int
    race_rounds: int
    hedge_requests: int
    wrk_seconds: int
    wrk_warmup_seconds: int
    latency_requests: int
    ttft_requests: int
    slow_streams: int
    footprint_requests: int
    footprint_cap_seconds: int
    percall_calls: int
    importtime_runs: int
    litellm_multiworker: bool
    op_timeout: float

    @classmethod
    def for_mode(cls, quick: bool, rounds: int | None) -> Settings:
        if quick:
            return cls(
                quick=True,
                rounds=rounds or 1,
                batch_sizes=(200, 1000),
                batch_concurrency=1000,
                batch_warmup=50,
                race_rounds=rounds or 3,
                hedge_requests=200,
                wrk_seconds=3,
                wrk_warmup_seconds=1,
                latency_requests=100,
                ttft_requests=40,
                slow_streams=500,
                footprint_requests=2000,
                footprint_cap_seconds=4,
                percall_calls=300,
                importtime_runs=1,
                litellm_multiworker=False,
                op_timeout=90.0,
            )
        return cls(
            quick=False,
            rounds=rounds or 3,
            batch_sizes=(200, 10_000),
            batch_concurrency=1000,
            batch_warmup=1000,
            race_rounds=rounds or 5,
            hedge_requests=1000,
            wrk_seconds=10,
            wrk_warmup_seconds=2,
            latency_requests=1000,
            ttft_requests=200,
            slow_streams=500,
            footprint_requests=100_000,
            footprint_cap_seconds=120,
            percall_calls=2000,
            importtime_runs=3,
            litellm_multiworker=True,
            op_timeout=600.0,
        )


@dataclass
class Upstream:
    url: str
    proc: Proc

    @property
    def openai_base(self) -> str:
        return self.url + "/v1"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.url + "/_emulator/stats", timeout=5) as resp:
            data: dict[str, int] = json.loads(resp.read())
        return data

    def reset(self) -> None:
        req = urllib.request.Request(self.url + "/_emulator/reset", data=b"{}", method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            resp.read()


@dataclass
class RunContext:
    settings: Settings
    registry: ProcessRegistry
    log_file: Path
    notes: dict[str, str] = field(default_factory=dict)
    _upstream: Upstream | None = None
    _litellm: tuple[Path | None, str] | None = None
    _wrk: tuple[str | None, str] | None = None
    proxies: dict[str, Any] = field(default_factory=dict)
    sdk_workers: dict[str, Any] = field(default_factory=dict)
    proxy_failures: dict[str, str] = field(default_factory=dict)

    @property
    def python(self) -> str:
        return sys.executable

    def log(self, message: str) -> None:
        line = f"[bench {time.strftime('%H:%M:%S')}] {message}"
        print(line, flush=True)
        with self.log_file.open("a") as fh:
            fh.write(line + "\n")

    # --- upstream -------------------------------------------------------------------------------------
    def upstream(self) -> Upstream:
        if self._upstream is not None and self._upstream.proc.alive():
            return self._upstream
        cmd = self._upstream_cmd()
        proc = self.registry.start("upstream", cmd, core=LOAD_CORE, env=self.child_env(), cwd=REPO)
        try:
            match = wait_for_line(proc, r"LLMPLEX_EMULATOR_READY (http://\S+)", timeout=30)
        except StartError as exc:
            self.registry.stop(proc)
            raise NotAvailable(f"the emulator did not start: {exc}") from exc
        self._upstream = Upstream(match.group(1).rstrip("/"), proc)
        self.log(f"upstream ready at {self._upstream.url} (core {LOAD_CORE})")
        return self._upstream

    def _upstream_cmd(self) -> list[str]:
        override = os.environ.get("BENCH_UPSTREAM_CMD")  # development hook; the report names the command
        if override:
            self.notes["upstream"] = f"`{override}` (BENCH_UPSTREAM_CMD)"
            return shlex.split(override)
        if (
            importlib.util.find_spec("llmplex.emulator") is None
            or not (REPO / "src" / "llmplex" / "emulator" / "__main__.py").exists()
        ):
            raise NotAvailable("the llmplex emulator (llmplex.emulator) is not available yet")
        # idle connections stay open for the whole run, as a provider's do between a client's bursts: with
        # uvicorn's 5 s default, a side that waited through another side's turn would reconnect and the
        # warm-up that opened its connections would not hold
        cmd = [
            "-m",
            "llmplex.emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--keep-alive",
            str(UPSTREAM_KEEP_ALIVE_S),
        ]
        self.notes["upstream"] = f"`python {' '.join(cmd)}`"
        return [self.python, *cmd]

    # --- tools ----------------------------------------------------------------------------------------
    def litellm_python(self) -> Path:
        if self._litellm is None:
            self._litellm = setup_env.ensure_litellm(self.log)
            self.log(self._litellm[1])
        py, note = self._litellm
        if py is None:
            raise NotAvailable(note)
        return py

    def wrk(self) -> str | None:
        if self._wrk is None:
            self._wrk = setup_env.ensure_wrk(self.log)
            self.log(self._wrk[1])
        return self._wrk[0]

    def child_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra)
        return env

    def stop(self) -> None:
        self.registry.stop_all()
        self._upstream = None
        self.proxies.clear()
        self.sdk_workers.clear()
