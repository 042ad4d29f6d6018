"""Scenario: the SDK Router's own CPU per call: ``Router.acompletion`` vs the bare client, per library.

Each library's worker process alternates sequential non-streaming calls through its client
(llmplex: ``acompletion``, i.e. ``AsyncClient.completion``; LiteLLM: ``litellm.acompletion``) and
through its ``Router`` (one group, one deployment, same upstream); the difference is what routing costs.
"""

from __future__ import annotations

from typing import Any

from bench.context import RunContext
from bench.scenarios import ScenarioResult
from bench.scenarios.sdk_common import API_KEY, close_workers, rotated, start_workers
from bench.sdk import sdk_available
from bench.stats import fmt, fmt_spread, summary

MODEL = "openai/bench-router"
LABELS = {
    "llmplex": "llmplex `acompletion` (AsyncClient.completion)",
    "llmplex-router": "llmplex `Router.acompletion`",
    "litellm": "LiteLLM `acompletion`",
    "litellm-router": "LiteLLM `Router.acompletion`",
}
RUNS = [
    ("llmplex", "llmplex", "percall"),
    ("llmplex-router", "llmplex", "router_percall"),
    ("litellm", "litellm", "percall"),
    ("litellm-router", "litellm", "router_percall"),
]


def run(ctx: RunContext, result: ScenarioResult) -> None:
    sdk_available("llmplex-batch")
    s = ctx.settings
    up = ctx.upstream()
    workers = start_workers(ctx, result, ["llmplex", "litellm"])
    plan = {row: (side, op) for row, side, op in RUNS if side in workers}
    cmd: dict[str, Any] = {
        "model": MODEL,
        "api_base": up.openai_base,
        "api_key": API_KEY,
        "n": s.percall_calls,
        "warmup": 50,
    }
    runs: dict[str, list[dict[str, Any]]] = {row: [] for row in plan}
    rounds = max(s.rounds, 2) * 2  # pairs of the same worker alternate too
    try:
        for r in range(rounds):
            for row in rotated(list(plan), r):
                side, op = plan[row]
                runs[row].append(workers[side].call(op, cmd))
    finally:
        close_workers(workers)
    result.raw = {"runs": runs, "model": MODEL}
    rows = []
    for row, outs in runs.items():
        cpu = _cpu(outs)
        base_row = row.removesuffix("-router")
        over = cpu["median"] - _cpu(runs.get(base_row, []))["median"] if row != base_row else None
        rows.append(
            [
                LABELS[row],
                fmt_spread(cpu, 3),
                fmt_spread(summary([o["wall_ms_per_call"] for o in outs if "error" not in o]), 3),
                "-" if over is None else fmt(over * 1000, 1, " us"),
                str(sum(o.get("errors", 0) for o in outs if "error" not in o))
                + "".join(f"; {o['error']}" for o in outs[:1] if "error" in o),
            ]
        )
    result.table(
        "CPU per call, sequential calls to the emulator",
        ["client", "CPU ms / call", "wall ms / call", "Router over its client", "errors"],
        rows,
    )
    result.notes.append(
        f"{s.percall_calls} sequential calls per round after 50 excluded warm-up calls, {rounds} rounds, client "
        "and Router alternating in the same worker process (core 1); process CPU time divided by calls."
    )
    if "llmplex-router" in runs and "llmplex" in runs:
        over = _cpu(runs["llmplex-router"])["median"] - _cpu(runs["llmplex"])["median"]
        spread = [o["cpu_ms_per_call"] for o in runs["llmplex-router"] if "error" not in o]
        result.target(
            12,
            "Router.acompletion costs <= 50 us CPU more than AsyncClient.completion per request",
            f"{over * 1000:.1f} us (Router rounds {min(spread):.3f}..{max(spread):.3f} ms)" if spread else "-",
            over <= 0.05 if over == over else None,
        )
    else:
        result.target(12, "Router.acompletion costs <= 50 us CPU more than AsyncClient.completion", "not run", None)


def _cpu(outs: list[dict[str, Any]]) -> dict[str, float]:
    return summary([o["cpu_ms_per_call"] for o in outs if "error" not in o])
