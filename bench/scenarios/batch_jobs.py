"""Issue 15: a batch through the proxy's own executor (SQLite) against ``batch_completion`` of the same prompts.

100,000 lines (5,000 with --quick) at 100 ms upstream latency; each side in its own process on the SUT core.
Reported: lines/s, the ratio to ``batch_completion``, peak RSS of the executor's process.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.context import REPO, SUT_CORE, RunContext
from bench.procs import pin_prefix
from bench.scenarios import ScenarioResult
from bench.scenarios.batch_proxy import proxy_rows
from bench.scenarios.sdk_common import API_KEY
from bench.stats import fmt, summary

MODEL = "bench-delay-100"
_LABELS = {
    "executor": "proxy executor (SQLite)",
    "executor-pg": "proxy executor (PostgreSQL)",
    "sdk": "batch_completion (SDK)",
}
CONCURRENCY = 500


def _one(ctx: RunContext, args: dict[str, Any]) -> dict[str, Any]:
    argv = [*pin_prefix(SUT_CORE), ctx.python, "-m", "bench.workers.batch_jobs_worker", json.dumps(args)]
    out = subprocess.run(argv, capture_output=True, text=True, env=ctx.child_env(), cwd=REPO, timeout=1800, check=False)
    if out.returncode != 0:
        return {"error": out.stderr.strip()[-400:]}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


PG_HOST = "postgresql://postgres@127.0.0.1:5432"


def _pg_admin(statement: str) -> None:
    import asyncio

    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(f"{PG_HOST}/postgres", timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(go())


def run(ctx: RunContext, result: ScenarioResult) -> None:
    up = ctx.upstream()
    n = 5_000 if ctx.settings.quick else 100_000
    runs: dict[str, list[dict[str, Any]]] = {"executor": [], "executor-pg": [], "sdk": []}
    with tempfile.TemporaryDirectory(prefix="llmplex-bench-batch-") as tmp:
        for r in range(ctx.settings.rounds):
            for mode in ("executor", "executor-pg", "sdk"):
                ctx.log(f"batch-jobs round {r + 1}/{ctx.settings.rounds}: {mode} n={n}")
                db = str(Path(tmp) / f"round{r}.db")
                if mode == "executor-pg":
                    name = f"llmplex_bench_batch_{r}"
                    try:
                        _pg_admin(f'DROP DATABASE IF EXISTS "{name}"')
                        _pg_admin(f'CREATE DATABASE "{name}"')
                    except Exception as exc:  # no PostgreSQL here: reported, the rest runs
                        runs[mode].append({"error": f"PostgreSQL at 127.0.0.1:5432 unavailable: {exc}"})
                        continue
                    db = f"{PG_HOST}/{name}"
                args = {
                    "mode": "sdk" if mode == "sdk" else "executor",
                    "n": n,
                    "concurrency": CONCURRENCY,
                    "model": MODEL,
                    "api_base": up.openai_base,
                    "api_key": API_KEY,
                    "db": db,
                }
                runs[mode].append(_one(ctx, args))
                if mode == "executor-pg":
                    _pg_admin(f'DROP DATABASE IF EXISTS "{db.rsplit("/", 1)[1]}" WITH (FORCE)')
        proxy_rows(ctx, result, Path(tmp), n)
    result.raw.update({"runs": runs, "n": n, "concurrency": CONCURRENCY})
    result.notes.append(
        f"{n:,} lines, upstream `{MODEL}` (100 ms), concurrency {CONCURRENCY} on both sides, each run in a fresh "
        "process on the SUT core. Executor: lines inserted into a SQLite file first (time reported apart), then "
        "timed from the executor's start to the batch's end (claims, sends, grouped result writes, finalization); "
        "its sends go through the SDK client (the proxy adds its Router on top)."
    )
    rates = {m: summary([o["ok"] / o["wall_s"] for o in outs if "wall_s" in o]) for m, outs in runs.items()}
    rows = []
    for mode, outs in runs.items():
        good = [o for o in outs if "wall_s" in o]
        errors = [o["error"] for o in outs if "error" in o]
        rows.append(
            [
                _LABELS[mode],
                fmt(summary([o["wall_s"] for o in good])["median"], 2, " s"),
                fmt(rates[mode]["median"], 0),
                fmt(summary([o.get("insert_s", float("nan")) for o in good])["median"], 2, " s"),
                fmt(max((o["peak_rss_mb"] for o in good), default=float("nan")), 0),
                str(sum(o["failed"] for o in good)) + (f"; failed runs: {errors[0]}" if errors else ""),
            ]
        )
    result.table(
        f"{n:,} lines at 100 ms",
        ["side", "wall", "lines/s", "insert", "peak RSS MiB", "failed lines"],
        rows,
    )
    executor, sdk = rates["executor"]["median"], rates["sdk"]["median"]
    note = "" if n == 100_000 else f"measured with {n:,} lines (--quick), not 100,000"
    result.target(15, "executor, SQLite: >= 2,000 lines/s", fmt(executor, 0, " lines/s"), executor >= 2000, note)
    share = executor / sdk if sdk == sdk and sdk else float("nan")
    result.target(
        15, "executor >= 0.8 x batch_completion", f"{share:.2f} x", share >= 0.8 if share == share else None, note
    )
    peak = max((o["peak_rss_mb"] for o in runs["executor"] if "peak_rss_mb" in o), default=float("nan"))
    result.target(15, "executor peak RSS <= 150 MB", fmt(peak, 0, " MiB"), peak <= 150 if peak == peak else None, note)
