"""Scenario 5: latency a proxy adds at concurrency 1 (through the proxy vs straight to the emulator)."""

from __future__ import annotations

from typing import Any

from bench.context import RunContext
from bench.httpload import run_client, sequential_latency
from bench.proxies import LABELS, MASTER_KEY, MODEL, chat_body
from bench.scenarios import ScenarioResult
from bench.scenarios.proxy_common import proxy_names, target_url
from bench.scenarios.sdk_common import rotated
from bench.stats import fmt, percentile

WARMUP = 20


def run(ctx: RunContext, result: ScenarioResult) -> None:
    ctx.upstream()
    s = ctx.settings
    names = proxy_names(ctx)
    per_round = max(1, s.latency_requests // s.rounds)
    samples: dict[str, list[float]] = {}
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    for r in range(s.rounds):
        for name in rotated(names, r):
            target = target_url(ctx, name, result)
            if target is None:
                continue
            out = run_client(sequential_latency(target[0], chat_body(MODEL), headers, per_round, WARMUP))
            if target[1] is not None:
                target[1].served += per_round + WARMUP
            samples.setdefault(name, []).extend(out["latencies_ms"])
            ctx.log(f"proxy-latency round {r + 1}: {name} p50 {percentile(out['latencies_ms'], 50):.2f} ms")
    result.raw = {"latencies_ms": samples}
    result.notes.append(
        f"One aiohttp client (keep-alive, core 0) sends non-streaming requests one at a time: {per_round} per target "
        f"per round after {WARMUP} excluded warm-up requests, {s.rounds} round(s), targets rotating. Added latency = "
        "the target's percentile minus the same percentile straight to the emulator."
    )
    direct = samples.get("direct", [])
    d50, d99 = percentile(direct, 50), percentile(direct, 99)
    rows = []
    for name, lat in samples.items():
        p50, p99 = percentile(lat, 50), percentile(lat, 99)
        added = name != "direct"
        rows.append(
            [
                LABELS[name],
                fmt(p50, 2),
                fmt(p99, 2),
                fmt(p50 - d50, 2) if added else "-",
                fmt(p99 - d99, 2) if added else "-",
                str(len(lat)),
            ]
        )
    result.table("latency at concurrency 1 (ms)", ["target", "p50", "p99", "added p50", "added p99", "requests"], rows)
    _targets(result, samples, d50, d99)


def _targets(result: ScenarioResult, samples: dict[str, Any], d50: float, d99: float) -> None:
    lat = samples.get("llmplex")
    if not lat or not samples.get("direct"):
        result.target(4, "added latency at concurrency 1: p50 <= 1 ms, p99 <= 3 ms", "llmplex proxy did not run", None)
        return
    a50, a99 = percentile(lat, 50) - d50, percentile(lat, 99) - d99
    result.target(4, "added latency at concurrency 1: p50 <= 1 ms", f"{a50:.2f} ms", a50 <= 1.0)
    result.target(4, "added latency at concurrency 1: p99 <= 3 ms", f"{a99:.2f} ms", a99 <= 3.0)
