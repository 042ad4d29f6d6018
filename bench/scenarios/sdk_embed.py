"""SDK embedding of a corpus (200,000 short texts; 20,000 in quick mode) on an upstream that takes 100 ms per
request: ``llmplex.aembedding`` (splits at OpenAI's 2,048 inputs per request, parts concurrent, reassembled in
order) against a bare aiohttp loop sending the same splits with the same concurrency. LiteLLM is not run: it
sends the whole list in one request, which OpenAI (and the emulator) refuse above 2,048 inputs.
"""

from __future__ import annotations

from typing import Any

from bench.context import RunContext
from bench.scenarios import ScenarioResult
from bench.scenarios.sdk_common import API_KEY, close_workers, rotated, start_workers
from bench.stats import fmt, fmt_spread, summary

MODEL = "openai/bench-embed-delay-100"
SPLIT = 2048
CONCURRENCY = 100
LABELS = {"llmplex": "llmplex aembedding", "aiohttp": "bare aiohttp loop (same splits)"}


def run(ctx: RunContext, result: ScenarioResult) -> None:
    up = ctx.upstream()
    n = 20_000 if ctx.settings.quick else 200_000
    workers = start_workers(ctx, result, ["aiohttp", "llmplex"])
    cmd: dict[str, Any] = {
        "n": n,
        "model": MODEL,
        "split": SPLIT,
        "concurrency": CONCURRENCY,
        "api_base": up.openai_base,
        "api_key": API_KEY,
    }
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in workers}
    try:
        for worker in workers.values():  # warm-up (connections, imports), excluded
            worker.call("embed", {**cmd, "n": SPLIT})
        for r in range(ctx.settings.rounds):
            for side in rotated(list(workers), r):
                out = workers[side].call("embed", cmd)
                ctx.log(f"sdk-embed round {r + 1}: {side}: {out.get('wall_s', 0):.2f} s")
                runs[side].append(out)
    finally:
        close_workers(workers)
    result.raw = {"runs": runs, "n": n}
    result.notes.append(
        f"{n:,} short texts, model `{MODEL}` (100 ms per request), {SPLIT:,} inputs per request, "
        f"{CONCURRENCY} requests in flight, {ctx.settings.rounds} round(s) per side after one excluded warm-up."
    )
    rows = []
    rates: dict[str, float] = {}
    for side, outs in runs.items():
        ok = [o for o in outs if "error" not in o and o.get("vectors") == n]
        errors = [o.get("error", f"{o.get('vectors')} vectors") for o in outs if o not in ok]
        walls = summary([o["wall_s"] * 1000 for o in ok])
        if ok:
            rates[side] = n / (walls["median"] / 1000)
        rows.append(
            [
                LABELS[side],
                fmt_spread(walls, 0, " ms") if ok else "-",
                f"{rates.get(side, 0):,.0f}" if ok else "-",
                fmt(summary([o["cpu_s"] for o in ok])["median"], 2) + " s" if ok else "-",
                errors[0] if errors else "",
            ]
        )
    result.table("embedding a corpus", ["side", "wall", "inputs/s", "CPU", "errors"], rows)
    if "llmplex" in rates and "aiohttp" in rates:
        ratio = rates["llmplex"] / rates["aiohttp"]
        result.target(14, "SDK embedding, 200,000 inputs: >= 0.8 x a bare aiohttp loop", f"{ratio:.2f}x", ratio >= 0.8)
    else:
        result.target(14, "SDK embedding, 200,000 inputs: >= 0.8 x a bare aiohttp loop", "a side did not run", None)
