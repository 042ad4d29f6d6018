"""Load generation: wrk (Debian package) with a small Lua script, or a Python fallback when wrk is missing.

Both report requests, duration, latency percentiles and errors, plus the CPU the load generator itself
used, so the report can show it was not the bottleneck.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.context import LOAD_CORE, RESULTS_DIR
from bench.procs import pin_prefix

LUA = r"""
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
local limit = tonumber(os.getenv("BENCH_LIMIT") or "0")
local count = 0
local bad = 0
if limit > 0 then
  function response(status, headers, body)
    count = count + 1
    if status ~= 200 then bad = bad + 1 end
    if count >= limit then wrk.thread:stop() end
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_WRK {"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"p999_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
"""


def lua_script() -> Path:
    path = RESULTS_DIR / "post.lua"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(LUA)
    return path


def run_wrk(
    wrk: str, url: str, body: dict[str, Any], key: str, *, connections: int, seconds: float, limit: int = 0
) -> dict[str, Any]:
    """One wrk run (1 thread, pinned to the load core). ``limit`` stops after that many responses."""
    env = {**os.environ, "BENCH_BODY": json.dumps(body), "BENCH_KEY": key, "BENCH_LIMIT": str(limit)}
    duration = f"-d{max(1, round(seconds))}s"
    script = str(lua_script())
    argv = [*pin_prefix(LOAD_CORE), wrk, "-t1", f"-c{connections}", duration, "--timeout", "10s", "-s", script, url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _, _, ru = os.wait4(proc.pid, 0)
        out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    proc.returncode = 0  # reaped by wait4 above (which also gave its CPU time)
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_WRK ")), None)
    if line is None:
        return {"error": f"wrk printed no result: {out[-300:]}"}
    data: dict[str, Any] = json.loads(line[len("BENCH_WRK ") :])
    duration = data["duration_us"] / 1e6
    data["rps"] = data["requests"] / duration if duration else 0.0
    data["loadgen_cpu_share"] = (ru.ru_utime + ru.ru_stime) / duration if duration else 0.0
    data["errors"] = sum(
        data[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    data["tool"] = "wrk"
    return data


def run_python_load(
    url: str, body: dict[str, Any], key: str, *, connections: int, seconds: float, limit: int = 0
) -> dict[str, Any]:
    """Fallback load generator: ``connections`` aiohttp loops for ``seconds`` (bounded by ``limit`` too)."""
    import asyncio

    from bench.httpload import closed_loop

    cpu0 = time.process_time()
    data = asyncio.run(closed_loop(url, body, {"Authorization": f"Bearer {key}"}, connections, seconds, limit))
    data["loadgen_cpu_share"] = (time.process_time() - cpu0) / data["duration_s"] if data["duration_s"] else 0.0
    data["tool"] = "python (aiohttp)"
    return data
