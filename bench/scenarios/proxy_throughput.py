"""Scenario 4: proxy requests/s and latency percentiles, non-streaming and streaming, 50 connections.

Every proxy runs one worker pinned to core 1; the emulator (0 ms) and wrk share core 0. The bare
Starlette + aiohttp pass-through is the floor; "direct" shows what the emulator alone serves.
"""

from __future__ import annotations

from typing import Any

from bench.context import RunContext
from bench.proxies import LABELS, MODEL, chat_body
from bench.scenarios import ScenarioResult
from bench.scenarios.proxy_common import measured_load, proxy_names, target_url
from bench.scenarios.sdk_common import rotated
from bench.stats import fmt, fmt_ratio, fmt_spread, ratio, summary

CONNECTIONS = 50
MODES = [("non-streaming", False), ("streaming", True)]


def run(ctx: RunContext, result: ScenarioResult) -> None:
    ctx.upstream()
    s = ctx.settings
    names = proxy_names(ctx)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {mode: {} for mode, _ in MODES}
    for mode, stream in MODES:
        body = chat_body(MODEL, stream)
        for r in range(s.rounds):
            for name in rotated(names, r):
                target = target_url(ctx, name, result)
                if target is None:
                    continue
                ctx.log(f"proxy-throughput {mode} round {r + 1}/{s.rounds}: {name}")
                out = measured_load(ctx, name, target[0], target[1], body, CONNECTIONS)
                runs[mode].setdefault(name, []).append(out)
    result.raw = {"runs": runs, "connections": CONNECTIONS}
    tool = next((o.get("tool") for m in runs.values() for outs in m.values() for o in outs if "tool" in o), "wrk")
    result.notes.append(
        f"{tool}, 1 thread, {CONNECTIONS} connections, {s.wrk_seconds} s measured after a {s.wrk_warmup_seconds} s "
        "warm-up run (excluded), wrk timeout 10 s (a slower response counts as a timeout error). Proxies: one worker, "
        'pinned to core 1; emulator and load generator on core 0. "SUT CPU" is the proxy\'s (for direct: the '
        "emulator's) CPU time over the run's duration; \"loadgen CPU\" is the load generator's, showing it is not "
        f"the bottleneck. {s.rounds} round(s), order rotating; median (min..max)."
    )
    for mode, _ in MODES:
        _table(result, mode, runs[mode])
    _targets(result, runs)


def _rps(outs: list[dict[str, Any]]) -> dict[str, float]:
    return summary([o["rps"] for o in outs if "error" not in o])


def _table(result: ScenarioResult, mode: str, runs: dict[str, list[dict[str, Any]]]) -> None:
    floor = _rps(runs.get("floor", []))["median"] if "floor" in runs else None
    litellm = _rps(runs.get("litellm", []))["median"] if "litellm" in runs else None
    rows = []
    for name, outs in runs.items():
        ok = [o for o in outs if "error" not in o]
        last = ok[-1] if ok else {}
        rps = _rps(outs)
        rows.append(
            [
                LABELS[name],
                fmt_spread(rps, 0),
                fmt(summary([o["p50_us"] / 1000 for o in ok])["median"], 1),
                fmt(summary([o["p99_us"] / 1000 for o in ok])["median"], 1),
                str(sum(o.get("errors", 0) for o in ok)),
                fmt((last.get("sut_cpu_share") or 0) * 100, 0, " %"),
                fmt(last.get("loadgen_cpu_share", 0) * 100, 0, " %"),
                fmt_ratio(ratio(rps["median"], litellm)),
                fmt_ratio(ratio(rps["median"], floor)),
            ]
        )
    result.table(
        mode,
        ["target", "req/s", "p50 ms", "p99 ms", "errors", "SUT CPU", "loadgen CPU", "vs LiteLLM", "vs floor"],
        rows,
    )


def _targets(result: ScenarioResult, runs: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    ns = runs["non-streaming"]
    if "llmplex" not in ns:
        result.target(4, "non-streaming >= 1,500 req/s", "llmplex proxy did not run", None)
        result.target(4, "streaming >= 800 req/s", "llmplex proxy did not run", None)
        return
    rps = _rps(ns["llmplex"])["median"]
    result.target(
        4, "non-streaming, 50 connections: >= 1,500 req/s (LiteLLM: 37 req/s)", fmt(rps, 0, " req/s"), rps >= 1500
    )
    floor = _rps(ns["floor"])["median"] if "floor" in ns else None
    share = ratio(rps, floor)
    result.target(
        4,
        "non-streaming: >= 75 % of the bare Starlette + aiohttp pass-through in the same run",
        "-" if share is None else f"{share * 100:.0f} % (floor {fmt(floor, 0)} req/s)",
        None if share is None else share >= 0.75,
    )
    st = runs["streaming"].get("llmplex", [])
    srps = _rps(st)["median"]
    result.target(
        4,
        "streaming, 50 connections: >= 800 req/s (LiteLLM: 17 req/s)",
        fmt(srps, 0, " req/s"),
        srps >= 800 if srps == srps else None,
    )
