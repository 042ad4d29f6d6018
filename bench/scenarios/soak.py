"""Issue 6, "Load and soak": the llmplex proxy's RSS curve over 100,000 requests, and mixed faulted load.

One llmplex worker of its own (fresh, so the curve starts at its first request), pinned to core 1, with two
model groups on the emulator (0 ms): ``bench`` (healthy) and ``bench-faulty`` (its deployment's model name
carries ``status-503``, so every call to it fails upstream). LiteLLM is not part of this scenario.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.context import RESULTS_DIR, SUT_CORE, NotAvailable, RunContext
from bench.httpload import closed_loop, run_client
from bench.procs import Proc, StartError, wait_for_http
from bench.proxies import MASTER_KEY, MODEL, chat_body, free_port
from bench.scenarios import ScenarioResult
from bench.scenarios.soak_load import FAULTY_MODEL, mixed_load
from bench.stats import fmt

SLICES = 20
SLICE_CAP_S = 30.0
RSS_CONNECTIONS = 50
MIXED_CLIENTS = 200
FAULT_SHARE = 0.05
STREAM_SHARE = 0.5
GROWTH_LIMIT_MB = 10.0  # issue 6: decimal megabytes
MIB_PER_MB = 1e6 / 2**20


def run(ctx: RunContext, result: ScenarioResult) -> None:
    quick = ctx.settings.quick
    total, mixed_n = (20_000, 4_000) if quick else (100_000, 20_000)
    up = ctx.upstream()
    proc, url = _start_proxy(ctx, up.openai_base)
    try:
        curve = _rss_curve(ctx, proc, url + "/v1/chat/completions", total)
        upstream_before = up.stats()
        mixed = run_client(
            mixed_load(
                url + "/v1/chat/completions",
                {"Authorization": f"Bearer {MASTER_KEY}"},
                requests=mixed_n,
                clients=MIXED_CLIENTS,
                fault_share=FAULT_SHARE,
                stream_share=STREAM_SHARE,
                time_cap=120.0 if not quick else 60.0,
            )
        )
        mixed["upstream"] = _delta(upstream_before, up.stats())
        mixed["rss_after_mb"] = proc.rss_mb()
    finally:
        ctx.registry.stop(proc)
    result.raw = {"curve": curve, "mixed": mixed}
    _report(result, curve, mixed, total, mixed_n)


def _config(upstream_base: str) -> Path:
    base = {"api_base": upstream_base, "api_key": "sk-bench"}
    models = [
        {"model_name": MODEL, "litellm_params": {"model": f"openai/{MODEL}", **base}},
        {"model_name": FAULTY_MODEL, "litellm_params": {"model": f"openai/{MODEL}-status-503", **base}},
    ]
    # cooldown off: every request to the faulty group must reach the upstream (and fail there)
    config = {
        "model_list": models,
        "router_settings": {"cooldown_time": 0},
        "general_settings": {"master_key": MASTER_KEY},
    }
    path = RESULTS_DIR / "configs" / "soak.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    return path


def _start_proxy(ctx: RunContext, upstream_base: str) -> tuple[Proc, str]:
    port = free_port()
    code = "import sys; from llmplex.proxy.cli import main; sys.exit(main())"
    argv = [ctx.python, "-c", code, "--config", str(_config(upstream_base)), "--host", "127.0.0.1"]
    proc = ctx.registry.start("proxy-soak", [*argv, "--port", str(port)], env=ctx.child_env(), core=SUT_CORE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(proc, url + "/health/liveliness", timeout=60)
    except StartError as exc:
        ctx.registry.stop(proc)
        raise NotAvailable(f"the llmplex proxy did not start: {exc}") from exc
    time.sleep(1.0)
    return proc, url


def _rss_curve(ctx: RunContext, proc: Proc, url: str, total: int) -> list[dict[str, Any]]:
    """``SLICES`` load runs of ``total / SLICES`` requests each; the group's RSS after each."""
    per_slice = total // SLICES
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    curve = [{"requests": 0, "rss_mb": proc.rss_mb(), "errors": 0}]
    served = 0
    for i in range(SLICES):
        # the Python client stops at the count; wrk stops sending there but still waits out its -d duration
        out = run_client(closed_loop(url, chat_body(MODEL), headers, RSS_CONNECTIONS, SLICE_CAP_S, per_slice))
        served += out["requests"]
        curve.append({"requests": served, "rss_mb": proc.rss_mb(), "errors": out["errors"], "rps": out["rps"]})
        ctx.log(f"soak: slice {i + 1}/{SLICES}: {served:,} requests, RSS {curve[-1]['rss_mb']:.1f} MiB")
    return curve


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items()}


def _report(
    result: ScenarioResult, curve: list[dict[str, Any]], mixed: dict[str, Any], total: int, mixed_n: int
) -> None:
    warm = curve[1]
    growth = curve[-1]["rss_mb"] - warm["rss_mb"]
    peak = max(c["rss_mb"] for c in curve[1:]) - warm["rss_mb"]
    result.notes.append(
        f"RSS curve: a fresh llmplex proxy (one worker, core 1; emulator 0 ms on core 0) serves {total:,} "
        f"non-streaming requests in {SLICES} slices of {total // SLICES:,} (the harness's aiohttp closed-loop client, "
        f"{RSS_CONNECTIONS} connections, core 0; a slice may overshoot by the requests in flight, and stops after "
        f"{SLICE_CAP_S:.0f} s at most); the RSS of the proxy's process "
        "group is read after each. Warm-up = the first slice: growth is measured from the reading after it."
    )
    result.notes.append(
        f"Mixed faulted load, on the same process right after: {mixed_n:,} requests from {MIXED_CLIENTS} concurrent "
        f"aiohttp clients (the harness process, core 0), each request streaming with probability {STREAM_SHARE:.0%}, "
        f"sent to the `{FAULTY_MODEL}` group (deployment `{MODEL}-status-503`: the emulator answers 503) with "
        f"probability {FAULT_SHARE:.0%}; router cooldown off so each reaches the upstream. Expected error = HTTP 503 "
        "with an OpenAI-shaped JSON body (`error.message`, `error.type`). Lost = connection error or a stream cut "
        "before `[DONE]`; hung = no complete answer within 30 s, or still open at the time cap "
        f"({mixed['time_cap_s']:.0f} s). LiteLLM is not run here: the targets are llmplex's own."
    )
    rows = [[f"{c['requests']:,}", fmt(c["rss_mb"], 1), str(c["errors"])] for c in curve]
    result.table("RSS of the proxy after each slice (MiB)", ["requests served", "RSS MiB", "errors in slice"], rows)
    m = mixed
    result.table(
        "mixed faulted load",
        [
            "sent",
            "successes",
            "expected errors (503)",
            "unexpected",
            "lost",
            "hung",
            "upstream calls received (to the faulty group)",
            "p50 ms",
            "p99 ms",
            "wall",
        ],
        [
            [
                f"{m['sent']:,}",
                f"{m['successes']:,}",
                f"{m['expected_errors']:,}",
                str(m["unexpected"]),
                str(m["lost"]),
                str(m["hung"]),
                f"{m['upstream'].get('received', 0):,} ({m['faulty_sent']:,})",
                fmt(m["p50_ms"], 1),
                fmt(m["p99_ms"], 1),
                fmt(m["wall_s"], 1, " s"),
            ]
        ],
    )
    if m["unexpected_samples"]:
        result.notes.append("unexpected outcomes (first few): " + "; ".join(m["unexpected_samples"]))
    growth_mb = growth / MIB_PER_MB
    result.target(
        6,
        f"{total:,} requests through one worker: RSS growth after warm-up < {GROWTH_LIMIT_MB:.0f} MB",
        f"{growth:+.1f} MiB ({warm['rss_mb']:.1f} -> {curve[-1]['rss_mb']:.1f} MiB; peak {peak:+.1f})",
        growth_mb < GROWTH_LIMIT_MB,
        "100,000 in the full run" if total < 100_000 else "",
    )
    clean = m["lost"] == 0 and m["hung"] == 0 and m["unexpected"] == 0
    result.target(
        6,
        f"{MIXED_CLIENTS} concurrent clients, mixed streaming, {FAULT_SHARE:.0%} faulted: every request a success "
        "or the correct error; zero lost, zero hung",
        f"{m['successes']:,} ok + {m['expected_errors']:,} correct errors of {m['sent']:,}; "
        f"unexpected {m['unexpected']}, lost {m['lost']}, hung {m['hung']}",
        clean and m["sent"] == m["successes"] + m["expected_errors"],
    )
