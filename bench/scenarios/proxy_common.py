"""Shared helpers of the proxy scenarios: the list of targets, one load run against a target."""

from __future__ import annotations

from typing import Any

from bench.context import NotAvailable, RunContext
from bench.proxies import LABELS, MASTER_KEY, RunningProxy, get_proxy
from bench.scenarios import ScenarioResult
from bench.wrk import run_python_load, run_wrk


def proxy_names(ctx: RunContext, with_direct: bool = True) -> list[str]:
    names = ["direct"] if with_direct else []
    names += ["floor", "llmplex", "litellm", "litellm-tuned"]
    if ctx.settings.litellm_multiworker:
        names.append("litellm-workers")
    return names


def target_url(ctx: RunContext, name: str, result: ScenarioResult) -> tuple[str, RunningProxy | None] | None:
    """(chat URL, running proxy or None for direct), or None (noted once) when the proxy cannot run."""
    if name == "direct":
        return ctx.upstream().openai_base + "/chat/completions", None
    try:
        proxy = get_proxy(ctx, name)
    except NotAvailable as exc:
        note = f"{LABELS[name]}: could not run: {exc}"
        if note not in result.notes:
            result.notes.append(note)
        return None
    return proxy.chat_url, proxy


def load(
    ctx: RunContext, url: str, body: dict[str, Any], *, connections: int, seconds: float, limit: int = 0
) -> dict[str, Any]:
    wrk = ctx.wrk()
    if wrk:
        return run_wrk(wrk, url, body, MASTER_KEY, connections=connections, seconds=seconds, limit=limit)
    return run_python_load(url, body, MASTER_KEY, connections=connections, seconds=seconds, limit=limit)


def measured_load(
    ctx: RunContext, name: str, url: str, proxy: RunningProxy | None, body: dict[str, Any], connections: int
) -> dict[str, Any]:
    """Warm-up run (excluded), then the measured run with the system under test's CPU share."""
    s = ctx.settings
    warm = load(ctx, url, body, connections=connections, seconds=s.wrk_warmup_seconds)
    proc = proxy.proc if proxy is not None else ctx.upstream().proc
    cpu0 = proc.cpu_seconds()
    out = load(ctx, url, body, connections=connections, seconds=s.wrk_seconds)
    if "error" not in out:
        seconds = out.get("duration_us", 0) / 1e6 or out.get("duration_s", 0)
        out["sut_cpu_share"] = (proc.cpu_seconds() - cpu0) / seconds if seconds else None
    if proxy is not None:
        proxy.served += warm.get("requests", 0) + out.get("requests", 0)
    ctx.log(f"  {name}: {out.get('rps', 0):.0f} req/s, errors {out.get('errors', out.get('error'))}")
    return out
