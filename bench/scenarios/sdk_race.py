"""Scenario 2: batch_completion_models(models=[slow 1,500 ms, fast 50 ms]): wall time, winner, loser disconnect.

Also each library's ``Router.abatch_completion_fastest_response("slow, fast")`` (two groups of one
deployment each), run by the same worker process.

The disconnect is what the upstream saw: the worker polls the emulator's ``/_emulator/stats`` counter
right after the call returns and times the first ``disconnected`` increment from the win.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.context import RunContext
from bench.scenarios import ScenarioResult
from bench.scenarios.sdk_common import API_KEY, close_workers, rotated, start_workers
from bench.sdk import sdk_available
from bench.stats import fmt, fmt_spread, summary

SLOW = "openai/bench-slow-delay-1500"
FAST = "openai/bench-fast-delay-50"
LABELS = {
    "llmplex": "llmplex",
    "litellm": "LiteLLM 1.108.7",
    "llmplex-router": "llmplex Router",
    "litellm-router": "LiteLLM 1.108.7 Router",
}
RUNS = [
    ("llmplex", "llmplex", "race"),
    ("litellm", "litellm", "race"),
    ("llmplex-router", "llmplex", "router_race"),
    ("litellm-router", "litellm", "router_race"),
]


def run(ctx: RunContext, result: ScenarioResult) -> None:
    sdk_available("llmplex-batch")
    up = ctx.upstream()
    s = ctx.settings
    workers = start_workers(ctx, result, ["llmplex", "litellm"])
    cmd: dict[str, Any] = {
        "slow": SLOW,
        "fast": FAST,
        "api_base": up.openai_base,
        "api_key": API_KEY,
        "stats_url": up.url + "/_emulator/stats",
    }
    plan = {row: (side, op) for row, side, op in RUNS if side in workers}
    runs: dict[str, list[dict[str, Any]]] = {row: [] for row in plan}
    try:
        for side, op in plan.values():  # warm-up race, excluded
            up.reset()
            workers[side].call(op, cmd)
        for r in range(s.race_rounds):
            for row in rotated(list(plan), r):
                side, op = plan[row]
                up.reset()
                out = workers[side].call(op, cmd)
                ctx.log(f"sdk-race round {r + 1}: {row}: {out.get('winner')} in {out.get('wall_s', 0) * 1000:.0f} ms")
                runs[row].append(out)
    finally:
        close_workers(workers)
    result.raw = {"runs": runs, "slow": SLOW, "fast": FAST}
    result.notes.append(
        f'`batch_completion_models(models=["{SLOW}", "{FAST}"])` (slow listed first, as in stack.md), '
        f"{s.race_rounds} rounds per side after one excluded warm-up race, sides alternating. "
        '"Loser disconnect" = time from the win (llmplex: race start + the winner\'s latency from the race '
        "metadata; LiteLLM: the call's return) until the upstream's disconnected counter moved, polled from a thread "
        "while the side's event loop keeps running (a race that cancels its loser and returns closes the socket on "
        "the loop's next iterations, as in an application). "
        'Router rows: `Router(model_list=[slow, fast]).abatch_completion_fastest_response("slow, fast")`.'
    )
    rows = []
    for side, outs in runs.items():
        ok = [o for o in outs if "error" not in o]
        winners = Counter(o["winner"] for o in ok)
        disc = [o["disconnect_after_win_ms"] for o in ok if o["disconnect_after_win_ms"] is not None]
        completed = sum(1 for o in ok if o["upstream"].get("completed", 0) >= 2)
        errs = [o["error"] for o in outs if "error" in o]
        rows.append(
            [
                LABELS[side],
                fmt_spread(summary([o["wall_s"] * 1000 for o in ok]), 0, " ms"),
                ", ".join(f"{k} x{v}" for k, v in winners.items()) or "-",
                (
                    fmt_spread(summary(disc), 1, " ms")
                    + ("" if len(disc) == len(ok) else f"; seen {len(disc)}/{len(ok)}")
                )
                if disc
                else "never (loser ran to completion)",
                f"{completed}/{len(ok)}" + (f"; errors: {errs[0]}" if errs else ""),
            ]
        )
    result.table(
        "race [slow 1,500 ms, fast 50 ms]",
        ["side", "wall", "winner", "loser disconnect after win", "rounds where the loser completed"],
        rows,
    )
    _targets(result, runs.get("llmplex", []))
    _targets(result, runs.get("llmplex-router", []), issue=12, what="Router.abatch_completion_fastest_response")


def _targets(result: ScenarioResult, outs: list[dict[str, Any]], issue: int = 3, what: str = "race") -> None:
    ok = [o for o in outs if "error" not in o]
    if not ok:
        result.target(issue, f"{what} returns the fast model in <= 70 ms", "llmplex did not run", None)
        return
    wall = summary([o["wall_s"] * 1000 for o in ok])
    all_fast = all(o["winner"] == "fast" for o in ok)
    result.target(
        issue,
        f"{what} [slow 1,500 ms, fast 50 ms]: returns the fast one in <= 70 ms (LiteLLM: 1.53 s, slow one)",
        f"{fmt(wall['median'], 1)} ms median, max {fmt(wall['max'], 1)} ms; "
        f"fast won {sum(o['winner'] == 'fast' for o in ok)}/{len(ok)}",
        all_fast and wall["median"] <= 70,
    )
    disc = [o["disconnect_after_win_ms"] for o in ok]
    seen = [d for d in disc if d is not None]
    result.target(
        issue,
        f"{what}: the slow request is seen disconnected by the upstream within 50 ms of the win",
        f"median {fmt(summary(seen)['median'], 1)} ms, max {fmt(max(seen) if seen else None, 1)} ms; "
        f"seen in {len(seen)}/{len(disc)} rounds",
        bool(seen) and len(seen) == len(disc) and max(seen) <= 50,
    )
