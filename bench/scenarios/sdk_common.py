"""Shared helpers of the SDK scenarios: start the side workers, rotate their order round by round."""

from __future__ import annotations

from bench.context import NotAvailable, RunContext
from bench.scenarios import ScenarioResult
from bench.sdk import SdkWorker

API_KEY = "sk-bench"


def start_workers(ctx: RunContext, result: ScenarioResult, sides: list[str]) -> dict[str, SdkWorker]:
    """One worker per side, started on first use and reused by later scenarios of the run (imports are paid
    once; sdk-batch runs first, so its peak RSS is its own). A side that cannot start is noted, the others run."""
    workers: dict[str, SdkWorker] = {}
    for side in sides:
        try:
            cached = ctx.sdk_workers.get(side)
            if cached is None or not cached.proc.alive():
                cached = ctx.sdk_workers[side] = SdkWorker(ctx, side)
            workers[side] = cached
        except NotAvailable as exc:
            result.notes.append(f"{side}: could not run: {exc}")
            ctx.log(f"{side} worker: {exc}")
    return workers


def close_workers(workers: dict[str, SdkWorker]) -> None:
    """Workers stay up for later scenarios; ``RunContext.stop`` ends them. Only dead ones are dropped."""
    for worker in workers.values():
        if not worker.proc.alive():
            worker.close()


def rotated(items: list[str], round_index: int) -> list[str]:
    """Who goes first changes each round, and every other round the order runs backwards: no side always runs on
    a fresher machine, nor always right after the same side (which leaves its wake: the emulator's backlog, a
    busy core; in one sdk-batch run the llmplex row, always after LiteLLM's Router, read 0.63x)."""
    k = (round_index // 2) % len(items) if items else 0
    order = items[k:] + items[:k]
    return order[::-1] if round_index % 2 else order
