"""Scenario 3: hedged requests on a heavy-tailed upstream (llmplex only: LiteLLM has no hedging).

Primary: 100 ms, except 5 % of requests drawn (seeded, the same draws for every mode) as 3 s.
Backup: 150 ms. Modes: no hedge (primary only), ``hedge_delay=0.3``, race-all (both start at once).
Extra requests = what the upstream received beyond one per request.
"""

from __future__ import annotations

from typing import Any

from bench.context import RunContext
from bench.scenarios import ScenarioResult
from bench.scenarios.sdk_common import API_KEY, close_workers, start_workers
from bench.sdk import sdk_available
from bench.stats import fmt, percentile

MODES = [("no hedge", "none", None), ("hedge_delay 0.3 s", "hedge", 0.3), ("race all", "race", None)]
CONCURRENCY = 20


def run(ctx: RunContext, result: ScenarioResult) -> None:
    sdk_available("llmplex-batch")
    up = ctx.upstream()
    n = ctx.settings.hedge_requests
    workers = start_workers(ctx, result, ["llmplex"])
    if "llmplex" not in workers:
        result.status, result.reason = "not run", "the llmplex worker could not start"
        return
    cmd: dict[str, Any] = {
        "n": n,
        "concurrency": CONCURRENCY,
        "seed": 5,
        "tail_fraction": 0.05,
        "primary_fast": "openai/primary-delay-100",
        "primary_slow": "openai/primary-delay-3000",
        "backup": "openai/backup-delay-150",
        "api_base": up.openai_base,
        "api_key": API_KEY,
    }
    modes: dict[str, dict[str, Any]] = {}
    try:
        workers["llmplex"].call("hedge", {**cmd, "n": 20, "mode": "hedge", "hedge_delay": 0.3})  # warm-up
        for label, mode, delay in MODES:
            up.reset()
            ctx.log(f"hedging: {label}, {n} requests")
            out = workers["llmplex"].call("hedge", {**cmd, "mode": mode, "hedge_delay": delay})
            out["upstream"] = up.stats()
            modes[label] = out
    finally:
        close_workers(workers)
    result.raw = {"modes": modes, "requests": n, "concurrency": CONCURRENCY}
    result.notes.append(
        f"{n} requests per mode, {CONCURRENCY} at a time, after a 20-request warm-up (excluded). Primary "
        "`openai/primary-delay-100`, drawn as `openai/primary-delay-3000` for 5 % of requests (seed 5: the same "
        "requests are slow in every mode); backup `openai/backup-delay-150`. LiteLLM has no hedged requests "
        "(its `batch_completion_models` starts every model at once and waits for all), so this table is "
        "llmplex only."
    )
    rows = []
    for label, out in modes.items():
        if "error" in out:
            rows.append([label, f"failed: {out['error']}", "", "", "", ""])
            continue
        lat = out["latencies_ms"]
        extra = out["upstream"].get("received", 0) - n
        rows.append(
            [
                label,
                fmt(percentile(lat, 50), 0, " ms"),
                fmt(percentile(lat, 99), 0, " ms"),
                fmt(max(lat) if lat else None, 0, " ms"),
                f"{extra} ({extra / n * 100:.1f} %)",
                f"{out['winners'].get('backup', 0)}; errors {out['errors']}",
            ]
        )
    result.table(
        "latency and cost per mode",
        ["mode", "p50", "p99", "max", "extra upstream requests", "answered by the backup"],
        rows,
    )
    hedge = modes.get("hedge_delay 0.3 s", {})
    if "latencies_ms" in hedge:
        result.target(
            3,
            "hedged race (primary p50 100 ms, 5 % tail 3 s, backup 150 ms, hedge_delay 0.3 s): "
            "report p50 / p99 and extra requests",
            f"p50 {fmt(percentile(hedge['latencies_ms'], 50), 0)} ms, p99 "
            f"{fmt(percentile(hedge['latencies_ms'], 99), 0)} ms, "
            f"{hedge['upstream'].get('received', 0) - n} extra requests",
            "reported",
        )
