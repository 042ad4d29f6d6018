"""The scenarios of issues 5, 6 (soak), 7 (proxy-scale) and 17 (hostile), in report order; each is ``run(ctx, r)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.context import RunContext


@dataclass
class ScenarioResult:
    name: str
    title: str
    status: str = "ok"  # "ok" or "not run"
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)
    seconds: float = 0.0
    foreign_cpu: dict[str, float] = field(default_factory=dict)

    def table(self, title: str, columns: list[str], rows: list[list[str]]) -> None:
        self.tables.append({"title": title, "columns": columns, "rows": rows})

    def target(self, issue: int, target: str, value: str, met: bool | str | None, note: str = "") -> None:
        """``met=None``: could not be evaluated (the value says why); ``"reported"``: a number to report, no bar."""
        self.targets.append({"issue": issue, "target": target, "value": value, "met": met, "note": note})


Runner = Callable[[RunContext, ScenarioResult], None]


def registry() -> dict[str, tuple[str, Runner]]:
    from bench.scenarios import (
        batch_jobs,
        footprint,
        hedging,
        hostile,
        proxy_endpoints,
        proxy_keys,
        proxy_latency,
        proxy_queue,
        proxy_scale,
        proxy_streams,
        proxy_throughput,
        sdk_batch,
        sdk_embed,
        sdk_race,
        sdk_router,
        soak,
    )

    return {
        "sdk-batch": ("SDK: batch_completion throughput", sdk_batch.run),
        "sdk-race": ("SDK: batch_completion_models race [slow, fast]", sdk_race.run),
        "sdk-router": ("SDK: Router.acompletion CPU per call over the bare client", sdk_router.run),
        "hedging": ("SDK: hedged requests on a heavy-tailed upstream", hedging.run),
        "sdk-embed": ("SDK: embedding a corpus (auto-split) vs a bare aiohttp loop", sdk_embed.run),
        "proxy-throughput": ("Proxy: throughput, one worker, 50 connections", proxy_throughput.run),
        "proxy-latency": ("Proxy: added latency at concurrency 1", proxy_latency.run),
        "proxy-streams": ("Proxy: time to first token and many slow streams", proxy_streams.run),
        "proxy-endpoints": ("Proxy: /v1/embeddings and /v1/messages (issue 14)", proxy_endpoints.run),
        "proxy-scale": ("Proxy: Redis-backed rpm/tpm limits and a second worker", proxy_scale.run),
        "proxy-queue": ("Proxy: queue instead of 429 (400 requests at once over rpm limits)", proxy_queue.run),
        "proxy-keys": ("Proxy: virtual keys with spend tracking (SQLite, PostgreSQL)", proxy_keys.run),
        "soak": ("Soak: RSS over 100,000 requests, mixed faulted load (llmplex only)", soak.run),
        "footprint": ("Footprint: import time, startup, memory, per-call CPU", footprint.run),
        "hostile": ("Hostile upstreams: the proxy's health latency and RSS (issue 17)", hostile.run),
        "batch-jobs": ("Batch jobs: the proxy's executor vs batch_completion (SQLite)", batch_jobs.run),
    }
