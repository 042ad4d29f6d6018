"""Issue 17: the llmplex proxy in front of hostile upstreams stays responsive and small.

One llmplex proxy (its own process, core 1) with one deployment per hostile behaviour of the emulator
(``fault-redirect``, ``fault-endlessline``, ``fault-gzipbomb``, ``fault-hugebody``, ``fault-echokey``,
``fault-pingstall``; every deployment with ``timeout: 3``). For each behaviour in turn, a few clients send
requests to it in a loop while a probe calls ``/health/liveliness`` every 20 ms; the probe's latency and the
proxy's peak RSS (sampled every 50 ms) are the numbers. Hostile answers are also checked for the
deployment's key (it must never reach a client) and the emulator for requests that followed a redirect.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench.context import REPO, RESULTS_DIR, SUT_CORE, NotAvailable, RunContext
from bench.procs import Proc, StartError, wait_for_http
from bench.proxies import MASTER_KEY, free_port
from bench.scenarios import ScenarioResult
from bench.stats import fmt, percentile, summary

DEPLOYMENT_KEY = "sk-bench-hostile-0123456789"
PROBE_EVERY_S = 0.02
PROBE_TIMEOUT_S = 5.0
RSS_EVERY_S = 0.05
P99_TARGET_MS = 100.0
RSS_TARGET_MB = 150.0
# (label, emulator model, streamed)
CASES: list[tuple[str, str, bool]] = [
    ("redirect (307 to the same host)", "h-fault-redirect", False),
    ("endless SSE line", "h-fault-endlessline", True),
    ("gzip bomb, stream (1 GiB unpacked)", "h-fault-gzipbomb", True),
    ("gzip bomb, body (1 GiB unpacked)", "h-fault-gzipbomb", False),
    ("300 MB body", "h-fault-hugebody", False),
    ("error echoing the key", "h-fault-echokey", False),
    ("`: ping` only, never data", "h-fault-pingstall-chunkdelay-10", True),
]


def run(ctx: RunContext, result: ScenarioResult) -> None:
    seconds, clients = (4.0, 2) if ctx.settings.quick else (15.0, 4)
    up = ctx.upstream()
    proc, url = _start_proxy(ctx, up.openai_base)
    try:
        baseline_rss = proc.rss_mb()
        rows = []
        raw: dict[str, Any] = {"baseline_rss_mb": baseline_rss, "cases": {}}
        for label, model, stream in CASES:
            try:
                up.reset()
            except OSError:
                pass
            ctx.log(f"hostile: {label} ({clients} clients, {seconds:g} s)")
            out = asyncio.run(_measure(url, model, stream, seconds, clients, proc))
            out["followed_redirects"] = _redirected(up)
            raw["cases"][label] = out
            lat = summary(out["probe_ms"])
            rows.append(
                [
                    label,
                    f"{out['hostile_requests']:,}",
                    ", ".join(f"{k}: {v}" for k, v in sorted(out["statuses"].items())),
                    fmt(lat["median"], 1),
                    fmt(out["p99_ms"], 1),
                    fmt(lat["max"], 1),
                    str(out["probe_failures"]),
                    fmt(out["peak_rss_mb"], 0),
                    str(out["key_leaks"]),
                    str(out["followed_redirects"]),
                ]
            )
            result.target(
                17, f"{label}: health p99 < {P99_TARGET_MS:g} ms", fmt(out["p99_ms"], 1, " ms"), _p99_met(out)
            )
            result.target(
                17,
                f"{label}: proxy RSS < {RSS_TARGET_MB:g} MB",
                fmt(out["peak_rss_mb"], 0, " MiB"),
                out["peak_rss_mb"] < RSS_TARGET_MB,
            )
        result.raw = raw
        result.table(
            "llmplex proxy under hostile upstreams (health probe every 20 ms; RSS of the proxy's process group)",
            [
                "upstream behaviour",
                "hostile requests",
                "statuses seen",
                "health p50 ms",
                "health p99 ms",
                "health max ms",
                "probe failures",
                "peak RSS MiB",
                "key in a response",
                "redirects followed",
            ],
            rows,
        )
        result.notes.append(
            f"Each behaviour for {seconds:g} s with {clients} clients looping on it; idle RSS before the first: "
            f"{baseline_rss:.0f} MiB. Every deployment has `timeout: 3`; the proxy's defaults apply: "
            "`max_response_bytes` (32 MiB a body), `max_buffered_response_bytes` (48 MiB for the bodies read at "
            "once) and the stream event cap (8 MiB). The emulator, the clients and the probe share core 0."
        )
    finally:
        ctx.registry.stop(proc)


def _redirected(up: Any) -> str:
    try:
        return str(up.stats().get("redirected", "?"))
    except OSError as exc:  # a busy emulator: the table says so rather than the run failing
        return f"unknown ({type(exc).__name__})"


def _p99_met(out: dict[str, Any]) -> bool:
    return bool(out["p99_ms"] < P99_TARGET_MS and out["probe_failures"] == 0)


def _start_proxy(ctx: RunContext, upstream_base: str) -> tuple[Proc, str]:
    if not (REPO / "src" / "llmplex" / "proxy" / "cli.py").exists():
        raise NotAvailable("the llmplex proxy is not available")
    params = {"api_base": upstream_base, "api_key": DEPLOYMENT_KEY, "timeout": 3}
    models = [{"model_name": m, "litellm_params": {"model": f"openai/{m}", **params}} for _, m, _ in CASES]
    config = {
        "model_list": models,
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"num_retries": 0},
    }
    path = RESULTS_DIR / "configs" / "hostile.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    port = free_port()
    code = "import sys; from llmplex.proxy.cli import main; sys.exit(main())"
    argv = [ctx.python, "-c", code, "--config", str(path), "--host", "127.0.0.1", "--port", str(port)]
    proc = ctx.registry.start("proxy-hostile", argv, env=ctx.child_env(), core=SUT_CORE, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(proc, url + "/health/liveliness", timeout=60, headers=_headers())
    except StartError as exc:
        ctx.registry.stop(proc)
        raise NotAvailable(f"the llmplex proxy did not start: {exc}") from exc
    time.sleep(0.5)
    return proc, url


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {MASTER_KEY}"}


async def _measure(url: str, model: str, stream: bool, seconds: float, clients: int, proc: Proc) -> dict[str, Any]:
    import aiohttp

    out: dict[str, Any] = {"statuses": {}, "hostile_requests": 0, "key_leaks": 0, "probe_ms": []}
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    stop_at = time.monotonic() + seconds
    peak = [proc.rss_mb()]
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout, headers=_headers()) as http:

        async def hostile() -> None:
            while time.monotonic() < stop_at:
                key = "error"
                try:
                    async with http.post(url + "/v1/chat/completions", json=body) as resp:
                        data = await resp.read()
                        key = str(resp.status) + (" + error event" if stream and b'"error"' in data else "")
                        out["key_leaks"] += DEPLOYMENT_KEY.encode() in data
                except (aiohttp.ClientError, TimeoutError) as exc:
                    key = type(exc).__name__
                out["statuses"][key] = out["statuses"].get(key, 0) + 1
                out["hostile_requests"] += 1

        async def probe() -> None:
            failures = 0
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(PROBE_TIMEOUT_S):
                        async with http.get(url + "/health/liveliness") as resp:
                            await resp.read()
                            ok = resp.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                out["probe_ms"].append((time.perf_counter() - started) * 1000.0)
                failures += not ok
                await asyncio.sleep(PROBE_EVERY_S)
            out["probe_failures"] = failures

        async def sample_rss() -> None:
            while time.monotonic() < stop_at:
                peak[0] = max(peak[0], proc.rss_mb())
                await asyncio.sleep(RSS_EVERY_S)

        await asyncio.gather(probe(), sample_rss(), *(hostile() for _ in range(clients)))
    out["p99_ms"] = percentile(out["probe_ms"], 99)
    out["peak_rss_mb"] = peak[0]
    return out
