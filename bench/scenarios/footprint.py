"""Scenario 7: import time, proxy startup-to-healthy, idle RSS, RSS after N requests, per-call CPU overhead."""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any

from bench.context import REPO, SUT_CORE, NotAvailable, RunContext
from bench.procs import StartError, pin_prefix, wait_for_http
from bench.proxies import LABELS, MODEL, chat_body, free_port, get_proxy
from bench.scenarios import ScenarioResult
from bench.scenarios.proxy_common import load
from bench.scenarios.sdk_common import API_KEY, close_workers, rotated, start_workers
from bench.stats import fmt, fmt_spread, summary

PROXIES = ["llmplex", "litellm", "floor"]


def run(ctx: RunContext, result: ScenarioResult) -> None:
    imports = _import_times(ctx, result)
    proxies = _proxy_footprint(ctx, result)
    dropin = _litellm_config_startup(ctx, result)
    percall = _per_call_cpu(ctx, result)
    result.raw = {"import_s": imports, "proxies": proxies, "percall": percall, "litellm_config_startup_s": dropin}
    _targets(result, imports, proxies, percall)


def importtime_once(python: str, module: str, env: dict[str, str]) -> float:
    """Cumulative import time (s) of ``module`` from ``python -X importtime``."""
    argv = [*pin_prefix(SUT_CORE), python, "-X", "importtime", "-c", f"import {module}"]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    found = []
    for line in out.stderr.splitlines():
        # top-level imports only: one space after the last "|" (nested ones are indented further)
        match = re.match(r"import time:\s+\d+\s+\|\s+(\d+)\s+\| (\S+)\s*$", line)
        if match and match.group(2) == module:
            found.append(int(match.group(1)) / 1e6)
    if found:
        return max(found)
    raise NotAvailable(f"`import {module}` failed: {out.stderr.strip()[-300:]}")


def import_wall_once(python: str, module: str, env: dict[str, str]) -> float:
    """Wall time (s) of ``python -c "import X"`` minus ``python -c "pass"`` (interpreter startup)."""
    spent = []
    for code in (f"import {module}", "pass"):
        t0 = time.perf_counter()
        subprocess.run(
            [*pin_prefix(SUT_CORE), python, "-c", code], capture_output=True, env=env, timeout=120, check=False
        )
        spent.append(time.perf_counter() - t0)
    return spent[0] - spent[1]


def _import_times(ctx: RunContext, result: ScenarioResult) -> dict[str, list[float]]:
    env = ctx.child_env(LITELLM_LOCAL_MODEL_COST_MAP="True")
    sides: list[tuple[str, str, str]] = [("llmplex", ctx.python, "llmplex")]
    try:
        sides.append(("LiteLLM 1.108.7", str(ctx.litellm_python()), "litellm"))
    except NotAvailable as exc:
        result.notes.append(f"LiteLLM import time: could not run: {exc}")
    times: dict[str, list[float]] = {}
    walls: dict[str, list[float]] = {}
    for _ in range(ctx.settings.importtime_runs):
        for label, python, module in sides:
            try:
                times.setdefault(label, []).append(importtime_once(python, module, env))
                walls.setdefault(label, []).append(import_wall_once(python, module, env))
            except NotAvailable as exc:
                result.notes.append(f"{label}: {exc}")
    rows = [
        [label, fmt_spread(summary(v), 3, " s"), fmt_spread(summary(walls[label]), 3, " s")]
        for label, v in times.items()
    ]
    result.table(
        "import time",
        [
            "package",
            '`python -X importtime -c "import X"`, cumulative',
            'wall of `python -c "import X"` minus `-c pass`',
        ],
        rows,
    )
    return times


def _proxy_footprint(ctx: RunContext, result: ScenarioResult) -> dict[str, dict[str, Any]]:
    s = ctx.settings
    out: dict[str, dict[str, Any]] = {}
    for name in PROXIES:
        try:
            proxy = get_proxy(ctx, name)
        except NotAvailable as exc:
            result.notes.append(f"{LABELS[name]}: could not run: {exc}")
            continue
        ctx.log(f"footprint: {s.footprint_requests} requests to {name} (cap {s.footprint_cap_seconds} s)")
        t0 = time.perf_counter()
        run = load(
            ctx,
            proxy.chat_url,
            chat_body(MODEL),
            connections=50,
            seconds=s.footprint_cap_seconds,
            limit=s.footprint_requests,
        )
        proxy.served += run.get("requests", 0)
        out[name] = {
            "startup_s": proxy.startup_s,
            "idle_rss_mb": proxy.idle_rss_mb,
            "sent": run.get("requests", 0),
            "served_total": proxy.served,
            "rss_after_mb": proxy.proc.rss_mb(),
            "load_s": time.perf_counter() - t0,
            "errors": run.get("errors", run.get("error")),
        }
    rows = [
        [
            LABELS[n],
            fmt(d["startup_s"], 2, " s"),
            fmt(d["idle_rss_mb"], 0),
            f"{d['sent']:,}",
            f"{d['served_total']:,}",
            fmt(d["rss_after_mb"], 0),
            str(d["errors"]),
        ]
        for n, d in out.items()
    ]
    result.table(
        "proxy startup and memory (one worker; RSS of the whole process group, MiB)",
        [
            "proxy",
            "start to healthy",
            "idle RSS",
            "requests sent here",
            "requests served in this run",
            "RSS after",
            "errors",
        ],
        rows,
    )
    result.notes.append(
        f"Startup = process start until the health route answers 200 (`/health/liveliness`; the floor: `/health`), "
        f"idle RSS read 1 s later before any request. Then {s.footprint_requests:,} non-streaming requests "
        f"(wrk, 50 connections, stopped at that count or after {s.footprint_cap_seconds} s, whichever first; the "
        '"sent" column says how many went through) and the RSS read again. "Served in this run" includes the '
        "requests earlier scenarios of the same run sent to the same process."
    )
    return out


# LiteLLM's own example config, unchanged (a test fixture): wildcards, sagemaker, dall-e, unset variables
LITELLM_EXAMPLE_CONFIG = REPO / "tests" / "data" / "proxy_server_config.yaml"
_UNSET_PREFIXES = ("OPENAI_", "AZURE_", "ANTHROPIC_", "GROQ_", "REDIS_", "LANGFUSE_", "MISTRAL_", "DATABASE_")


def _litellm_config_startup(ctx: RunContext, result: ScenarioResult) -> float | None:
    """Start to healthy with LiteLLM's ``proxy_server_config.yaml`` as is, none of its variables set."""
    env = {k: v for k, v in ctx.child_env().items() if not k.startswith(_UNSET_PREFIXES)}
    env.pop("LITELLM_MASTER_KEY", None)
    port = free_port()
    code = "import sys; from llmplex.proxy.cli import main; sys.exit(main())"
    argv = [ctx.python, "-c", code, "--config", str(LITELLM_EXAMPLE_CONFIG), "--host", "127.0.0.1", "--port", str(port)]
    proc = ctx.registry.start("proxy-llmplex-litellm-config", argv, env=env, core=SUT_CORE, cwd=REPO)
    try:
        startup = wait_for_http(proc, f"http://127.0.0.1:{port}/health/liveliness", timeout=60)
    except StartError as exc:
        result.notes.append(f"llmplex with LiteLLM's proxy_server_config.yaml did not start: {exc}")
        result.target(13, "LiteLLM's proxy_server_config.yaml, unchanged: healthy <= 1.5 s", "did not start", False)
        return None
    finally:
        ctx.registry.stop(proc)
    result.table(
        "drop-in startup: LiteLLM's example proxy_server_config.yaml, unchanged, none of its variables set",
        ["proxy", "start to healthy"],
        [["llmplex", fmt(startup, 2, " s")]],
    )
    result.target(
        13, "LiteLLM's proxy_server_config.yaml, unchanged: healthy <= 1.5 s", fmt(startup, 2, " s"), startup <= 1.5
    )
    return startup


def _per_call_cpu(ctx: RunContext, result: ScenarioResult) -> dict[str, list[dict[str, Any]]]:
    s = ctx.settings
    up = ctx.upstream()
    workers = start_workers(ctx, result, ["llmplex", "aiohttp", "litellm"])
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in workers}
    cmd: dict[str, Any] = {
        "model": f"openai/{MODEL}",
        "api_base": up.openai_base,
        "api_key": API_KEY,
        "n": s.percall_calls,
        "warmup": 50,
    }
    try:
        for r in range(max(s.rounds, 2)):
            for side in rotated(list(workers), r):
                runs[side].append(workers[side].call("percall", cmd))
    finally:
        close_workers(workers)
    labels = {"llmplex": "llmplex `acompletion`", "aiohttp": "bare aiohttp POST", "litellm": "LiteLLM `acompletion`"}
    base = _cpu(runs.get("aiohttp", []))["median"]
    rows = []
    for side, outs in runs.items():
        cpu = _cpu(outs)
        rows.append(
            [
                labels[side],
                fmt_spread(cpu, 3),
                fmt_spread(summary([o["wall_ms_per_call"] for o in outs if "error" not in o]), 3),
                fmt(cpu["median"] - base, 3) if side != "aiohttp" else "-",
                str(sum(o.get("errors", 0) for o in outs if "error" not in o)),
            ]
        )
    result.table(
        "CPU per call, sequential calls to the emulator (ms)",
        ["client", "CPU ms / call", "wall ms / call", "CPU over bare aiohttp", "errors"],
        rows,
    )
    result.notes.append(
        f"Per-call CPU: {s.percall_calls} sequential non-streaming calls per round in one process per client "
        "(core 1), after 50 excluded warm-up calls; process CPU time (all threads) divided by calls; "
        f"{max(s.rounds, 2)} rounds, clients alternating."
    )
    return runs


def _cpu(outs: list[dict[str, Any]]) -> dict[str, float]:
    return summary([o["cpu_ms_per_call"] for o in outs if "error" not in o])


def _targets(
    result: ScenarioResult,
    imports: dict[str, list[float]],
    proxies: dict[str, dict[str, Any]],
    percall: dict[str, list[dict[str, Any]]],
) -> None:
    imp = summary(imports.get("llmplex", []))["median"]
    met = imp < 0.3 if imp == imp else None  # NaN when it could not run
    result.target(2, "`import llmplex` under 0.3 s (LiteLLM: 5.7 s)", fmt(imp, 3, " s"), met)
    if "llmplex" in percall and "aiohttp" in percall:
        over = _cpu(percall["llmplex"])["median"] - _cpu(percall["aiohttp"])["median"]
        result.target(
            2,
            "one acompletion costs <= 0.3 ms CPU more than a bare aiohttp POST",
            f"{over:.3f} ms",
            over <= 0.3 if over == over else None,
        )
    else:
        result.target(2, "one acompletion costs <= 0.3 ms CPU more than a bare aiohttp POST", "could not run", None)
    lp = proxies.get("llmplex")
    if lp is None:
        result.target(4, "startup to healthy <= 1.5 s", "llmplex proxy did not run", None)
        result.target(4, "idle RSS <= 80 MB", "llmplex proxy did not run", None)
        return
    result.target(
        4, "proxy startup to healthy <= 1.5 s (LiteLLM: 14 s)", fmt(lp["startup_s"], 2, " s"), lp["startup_s"] <= 1.5
    )
    result.target(
        4, "proxy idle RSS <= 80 MB (LiteLLM: 332 MB)", fmt(lp["idle_rss_mb"], 0, " MiB"), lp["idle_rss_mb"] <= 80
    )
