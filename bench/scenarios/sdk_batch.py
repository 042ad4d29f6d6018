"""Scenario 1: batch_completion of 200 and 10,000 prompts at 100 ms upstream latency.

llmplex (``abatch_completion``, max_concurrency) vs LiteLLM (``batch_completion``, max_workers) vs a bare
aiohttp loop (the ceiling), each side in its own pinned process; completed req/s, CPU per request, peak RSS.
Also each library's ``Router.abatch_completion_one_model_multiple_requests`` (one group, one deployment),
run by the same worker process as its library's plain batch.
"""

from __future__ import annotations

from typing import Any

from bench.context import RunContext
from bench.scenarios import ScenarioResult
from bench.scenarios.sdk_common import API_KEY, close_workers, rotated, start_workers
from bench.sdk import sdk_available
from bench.stats import fmt, fmt_ratio, fmt_spread, ratio, summary

MODEL = "openai/bench-delay-100"
SIDES = ["llmplex", "litellm", "aiohttp"]
LABELS = {
    "llmplex": "llmplex",
    "litellm": "LiteLLM 1.108.7",
    "aiohttp": "bare aiohttp loop (ceiling)",
    "llmplex-router": "llmplex Router",
    "litellm-router": "LiteLLM 1.108.7 Router",
}
# measured runs: (row, worker side, worker op)
RUNS = [
    ("llmplex", "llmplex", "batch"),
    ("litellm", "litellm", "batch"),
    ("aiohttp", "aiohttp", "batch"),
    ("llmplex-router", "llmplex", "router_batch"),
    ("litellm-router", "litellm", "router_batch"),
]


def run(ctx: RunContext, result: ScenarioResult) -> None:
    sdk_available("llmplex-batch")
    up = ctx.upstream()
    s = ctx.settings
    workers = start_workers(ctx, result, SIDES)
    common: dict[str, Any] = {
        "model": MODEL,
        "api_base": up.openai_base,
        "api_key": API_KEY,
        "concurrency": s.batch_concurrency,
    }
    plan = {row: (side, op) for row, side, op in RUNS if side in workers}
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {row: {n: [] for n in s.batch_sizes} for row in plan}
    try:
        for side, op in plan.values():  # warm-up: connections, imports, lazy init; excluded
            workers[side].call(op, {"n": s.batch_warmup, **common})
        for r in range(s.rounds):
            for n in s.batch_sizes:
                for row in rotated(list(plan), r):
                    side, op = plan[row]
                    ctx.log(f"sdk-batch round {r + 1}/{s.rounds}: {row} n={n}")
                    # re-warm right before: an idle pool (another side's turn can take a minute) outlives
                    # the client's keep-alive, and reconnecting is not what this scenario measures
                    workers[side].call(op, {"n": min(n, s.batch_concurrency), **common})
                    out = workers[side].call(op, {"n": n, **common})
                    runs[row][n].append(out)
    finally:
        close_workers(workers)
    result.raw = {"runs": runs, "model": MODEL, "concurrency": s.batch_concurrency}
    result.notes.append(
        f"Upstream model `{MODEL}` (100 ms per request) on core 0; each side in its own process on core 1. "
        f"llmplex `abatch_completion(max_concurrency={s.batch_concurrency})`, LiteLLM "
        f"`batch_completion(max_workers={s.batch_concurrency})`, ceiling: asyncio.gather over aiohttp with a "
        f"semaphore of {s.batch_concurrency}. A {s.batch_warmup}-prompt warm-up batch per side, and right before "
        "every measured batch one of min(n, concurrency) prompts (so each side starts with warm connections, "
        "whatever it idled through), are excluded. "
        "LiteLLM runs with its SDK defaults (no callbacks configured, its fastest documented setting). "
        "Router rows: `Router(model_list=[one deployment]).abatch_completion_one_model_multiple_requests` "
        f"(llmplex with max_concurrency={s.batch_concurrency}; LiteLLM's gathers every prompt at once). "
        f"{s.rounds} round(s), sides alternating; median (min..max)."
    )
    _tables(result, runs, s.batch_sizes)
    _targets(result, runs, s.batch_sizes)


def _metric(outs: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = []
    for o in outs:
        if "error" in o:
            continue
        if key == "rps":
            values.append(o["ok"] / o["wall_s"])
        elif key == "cpu_ms":
            values.append(o["cpu_s"] * 1000 / o["n"])
        else:
            values.append(o[key])
    return summary(values)


def _tables(result: ScenarioResult, runs: dict[str, dict[int, list[dict[str, Any]]]], sizes: tuple[int, ...]) -> None:
    for n in sizes:
        rps = {side: _metric(runs[side][n], "rps")["median"] for side in runs}
        rows = []
        for side in runs:
            outs = runs[side][n]
            failed = [o["error"] for o in outs if "error" in o]
            errors = sum(o.get("errors", 0) for o in outs)
            rows.append(
                [
                    LABELS[side],
                    fmt_spread(_metric(outs, "wall_s"), 2, " s"),
                    fmt_spread(_metric(outs, "rps"), 0),
                    fmt_spread(_metric(outs, "cpu_ms"), 2),
                    fmt(_metric(outs, "peak_rss_mb")["max"], 0),
                    str(errors) + (f"; failed rounds: {failed[0]}" if failed else ""),
                    fmt_ratio(ratio(rps[side], rps.get("litellm"))),
                    fmt_ratio(ratio(rps[side], rps.get("aiohttp"))),
                ]
            )
        result.table(
            f"{n:,} prompts",
            [
                "side",
                "wall",
                "completed req/s",
                "CPU ms / request",
                "peak RSS MiB",
                "errors",
                "req/s vs LiteLLM",
                "req/s vs ceiling",
            ],
            rows,
        )


def _targets(result: ScenarioResult, runs: dict[str, dict[int, list[dict[str, Any]]]], sizes: tuple[int, ...]) -> None:
    small, large = sizes
    if "llmplex" not in runs:
        result.target(3, "200 prompts at 100 ms: <= 0.25 s", "llmplex did not run", None)
        return
    wall = _metric(runs["llmplex"][small], "wall_s")["median"]
    result.target(
        3,
        "200 prompts, 100 ms upstream: wall <= 0.25 s (LiteLLM measured 2.39 s)",
        fmt(wall, 3, " s"),
        wall <= 0.25 if wall == wall else None,
    )
    rps = _metric(runs["llmplex"][large], "rps")["median"]
    ceiling = _metric(runs["aiohttp"][large], "rps")["median"] if "aiohttp" in runs else float("nan")
    note = "" if large == 10_000 else f"measured with {large:,} prompts (--quick), not 10,000"
    result.target(
        3,
        "10,000 prompts, max_concurrency=1000: >= 2,000 completed req/s",
        fmt(rps, 0, " req/s"),
        rps >= 2000 if rps == rps else None,
        note,
    )
    share = ratio(rps, ceiling)
    result.target(
        3,
        "10,000 prompts: >= 80 % of the bare aiohttp loop in the same run",
        "-" if share is None else f"{share * 100:.0f} % ({fmt(ceiling, 0)} req/s ceiling)",
        None if share is None else share >= 0.8,
        note,
    )
    if "llmplex-router" in runs:
        router_rps = _metric(runs["llmplex-router"][large], "rps")["median"]
        router_share = ratio(router_rps, ceiling)
        result.target(
            12,
            "Router.abatch_completion_one_model_multiple_requests, 10,000 prompts, max_concurrency=1000: "
            ">= 80 % of the bare aiohttp loop",
            "-" if router_share is None else f"{router_share * 100:.0f} % ({fmt(router_rps, 0)} req/s)",
            None if router_share is None else router_share >= 0.8,
            note,
        )
