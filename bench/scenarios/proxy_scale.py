"""Issue 7: what shared state in Redis and a second worker cost or give the llmplex proxy.

Non-streaming, 50 connections, the emulator at 0 ms, wrk as in proxy-throughput. Sides: no limits, per-deployment
rpm/tpm limits kept in-process, the same limits backed by Redis (127.0.0.1:6379), and both limit kinds again with
``--num_workers 2``. The limits are set far above what the run can reach, so every request is admitted and each
one still takes the full limit path. One-worker proxies are pinned to core 1; two-worker proxies are unpinned
(the machine has 2 cores, shared with wrk, the emulator and the Redis server). Each Redis side gets its own key
prefix under one per-run prefix; every key under it is deleted at the end.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from bench.context import REPO, SUT_CORE, NotAvailable, RunContext
from bench.procs import ALL_CORES, StartError, wait_for_http
from bench.proxies import MODEL, RunningProxy, chat_body, free_port, write_config
from bench.scenarios import ScenarioResult
from bench.scenarios.proxy_common import load
from bench.scenarios.sdk_common import rotated
from bench.stats import fmt, fmt_ratio, fmt_spread, ratio, summary

CONNECTIONS = 50
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# far above what one run reaches (about 10^5 requests and 10^6 tokens a minute), so nothing is refused
LIMITS: dict[str, Any] = {"rpm": 100_000_000, "tpm": 100_000_000_000}
REDIS_TARGET = 0.85  # Redis-backed limits: at most 15 % below in-process ones
MIN_ADMITS = 0.95  # Redis admits per request below this: requests were decided on local state (fail-open)
_REDIS_ENV = ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD")  # would turn Redis on for every side


@dataclass(frozen=True)
class Side:
    key: str
    label: str
    workers: int
    limits: bool
    redis: bool


SIDES = [
    Side("none", "no limits", 1, False, False),
    Side("local", "rpm/tpm limits, in-process", 1, True, False),
    Side("redis", "rpm/tpm limits, Redis-backed", 1, True, True),
    Side("redis-w2", "rpm/tpm limits, Redis-backed, 2 workers", 2, True, True),
    Side("local-w2", "rpm/tpm limits, in-process (per worker), 2 workers", 2, True, False),
]


class RedisProbe:
    """A synchronous client for what the harness reads from Redis: CPU time, admit counters, cleanup."""

    def __init__(self, run_prefix: str) -> None:
        try:
            import redis
        except ImportError as exc:
            raise NotAvailable(f"the redis package is not installed ({exc})") from exc
        self.run_prefix = run_prefix
        self.client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=5, socket_connect_timeout=2)
        try:
            self.client.ping()
            info = self.client.info("server")
        except (redis.RedisError, OSError) as exc:
            raise NotAvailable(f"Redis is not reachable on {REDIS_HOST}:{REDIS_PORT} ({exc})") from exc
        self.version = str(info.get("redis_version", "?"))

    def side_prefix(self, side: Side) -> str:
        return f"{self.run_prefix}:{side.key}"

    def cpu_seconds(self) -> float:
        info = self.client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def admit_counters(self, side: Side) -> dict[bytes, int]:
        """Every rpm window counter of this side: one increment per request the Lua admit script let through."""
        keys = list(self.client.scan_iter(match=f"{self.side_prefix(side)}:*:rpm:*", count=1000))
        values = self.client.mget(keys) if keys else []
        return {k: int(v) for k, v in zip(keys, values, strict=True) if v is not None}

    def cleanup(self) -> str:
        """Delete every key of this run; says how many (or why it could not)."""
        import redis

        try:
            keys = list(self.client.scan_iter(match=f"{self.run_prefix}:*", count=1000))
            for start in range(0, len(keys), 500):
                self.client.delete(*keys[start : start + 500])
            left = sum(1 for _ in self.client.scan_iter(match=f"{self.run_prefix}:*", count=1000))
        except (redis.RedisError, OSError) as exc:
            return f"deleting its keys failed ({exc})"
        return f"{len(keys)} keys deleted afterwards, {left} left"


def run(ctx: RunContext, result: ScenarioResult) -> None:
    probe = RedisProbe(f"llmplex-bench:{time.strftime('%Y%m%d%H%M%S')}-{os.urandom(3).hex()}")
    ctx.upstream()
    started: dict[str, RunningProxy] = {}
    failed: set[str] = set()
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        for r in range(ctx.settings.rounds):
            for side in rotated([s.key for s in SIDES], r):
                spec = next(s for s in SIDES if s.key == side)
                proxy = None if side in failed else started.get(side) or _start(ctx, spec, probe, result)
                if proxy is None or not proxy.proc.alive():
                    if side not in failed and proxy is not None:
                        result.notes.append(f"{spec.label}: the proxy exited during the run; later rounds skipped")
                    failed.add(side)
                    continue
                started[side] = proxy
                ctx.log(f"proxy-scale round {r + 1}/{ctx.settings.rounds}: {side}")
                runs.setdefault(side, []).append(_measure(ctx, spec, proxy, probe))
    finally:
        for proxy in started.values():
            _check_log(result, proxy)
            ctx.registry.stop(proxy.proc)
        cleanup = probe.cleanup()  # after the proxies stopped: their background sync would write keys again
    result.raw = {"runs": runs, "connections": CONNECTIONS, "redis_version": probe.version}
    _notes(ctx, result, runs, probe, cleanup)
    _table(result, runs)
    _targets(result, runs)


def _start(ctx: RunContext, side: Side, probe: RedisProbe, result: ScenarioResult) -> RunningProxy | None:
    extra: dict[str, Any] = {}
    if side.redis:
        extra["router_settings"] = {"redis_host": REDIS_HOST, "redis_port": REDIS_PORT}
        extra["llmplex_settings"] = {"redis_key_prefix": probe.side_prefix(side)}
    up = ctx.upstream()
    config = write_config(f"llmplex-scale-{side.key}", up.openai_base, extra, LIMITS if side.limits else None)
    port = free_port()
    code = "import sys; from llmplex.proxy.cli import main; sys.exit(main())"
    argv = [ctx.python, "-c", code, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--num_workers", str(side.workers)]
    env = ctx.child_env()
    for name in _REDIS_ENV:
        env.pop(name, None)
    core = SUT_CORE if side.workers == 1 else ALL_CORES
    proc = ctx.registry.start(f"proxy-scale-{side.key}", argv, env=env, core=core, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        startup = wait_for_http(proc, url + "/health/liveliness", timeout=60)
    except StartError as exc:
        ctx.registry.stop(proc)
        result.notes.append(f"{side.label}: could not run: the proxy did not start: {exc}")
        return None
    time.sleep(1.0)  # let every worker finish starting before load arrives
    ctx.log(f"proxy-scale {side.key} healthy after {startup:.2f} s at {url}")
    return RunningProxy("llmplex", url, proc, startup, proc.rss_mb())


def _measure(ctx: RunContext, side: Side, proxy: RunningProxy, probe: RedisProbe) -> dict[str, Any]:
    """Warm-up run (excluded), then the measured run with the proxy's and Redis's CPU shares."""
    s = ctx.settings
    body = chat_body(MODEL)
    load(ctx, proxy.chat_url, body, connections=CONNECTIONS, seconds=s.wrk_warmup_seconds)
    cpu0, redis_cpu0 = proxy.proc.cpu_seconds(), probe.cpu_seconds()
    counters0 = probe.admit_counters(side) if side.redis else {}
    out = load(ctx, proxy.chat_url, body, connections=CONNECTIONS, seconds=s.wrk_seconds)
    if "error" in out:
        ctx.log(f"  {side.key}: {out['error']}")
        return out
    seconds = out.get("duration_us", 0) / 1e6 or out.get("duration_s", 0)
    if seconds:
        out["sut_cpu_share"] = (proxy.proc.cpu_seconds() - cpu0) / seconds
        out["redis_cpu_share"] = (probe.cpu_seconds() - redis_cpu0) / seconds
    if side.redis:
        counters = probe.admit_counters(side)
        out["redis_admits"] = sum(v - counters0.get(k, 0) for k, v in counters.items())
    ctx.log(f"  {side.key}: {out.get('rps', 0):.0f} req/s, errors {out.get('errors')}")
    return out


def _check_log(result: ScenarioResult, proxy: RunningProxy) -> None:
    """A Redis side that fell back to local state measured the wrong thing: say so next to the numbers."""
    text = proxy.proc.log_text()
    count = text.count("Redis unavailable")
    if count:
        result.notes.append(f"{proxy.proc.name}: the proxy logged {count} 'Redis unavailable' warning(s)")
    if "Traceback" in text:
        result.notes.append(f"{proxy.proc.name}: the proxy log holds a traceback (see bench/results/logs)")


def _ok(outs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in outs if "error" not in o]


def _rps(runs: dict[str, list[dict[str, Any]]], side: str) -> dict[str, float]:
    return summary([o["rps"] for o in _ok(runs.get(side, []))])


def _paired(runs: dict[str, list[dict[str, Any]]], a: str, b: str) -> dict[str, float]:
    """Ratio a/b within each round (the two ran minutes apart at most), median and spread over rounds."""
    pairs = zip(runs.get(a, []), runs.get(b, []), strict=False)
    return summary([x["rps"] / y["rps"] for x, y in pairs if "error" not in x and "error" not in y and y["rps"]])


def _notes(
    ctx: RunContext,
    result: ScenarioResult,
    runs: dict[str, list[dict[str, Any]]],
    probe: RedisProbe,
    cleanup: str,
) -> None:
    s = ctx.settings
    tool = next((o.get("tool") for outs in runs.values() for o in outs if "tool" in o), "wrk")
    result.notes += [
        f"{tool}, 1 thread, {CONNECTIONS} connections, non-streaming, emulator at 0 ms; {s.wrk_seconds} s measured "
        f"after a {s.wrk_warmup_seconds} s warm-up run (excluded); {s.rounds} round(s), side order rotating each "
        "round; median (min..max).",
        f"Limits: `rpm: {LIMITS['rpm']:,}`, `tpm: {LIMITS['tpm']:,}` on each deployment (never reached: every "
        "request is admitted, and every one goes through the limit check). Redis-backed: `router_settings."
        f"redis_host: {REDIS_HOST}`, `redis_port: {REDIS_PORT}` (Redis {probe.version}, already running on this "
        "machine, not pinned), one `llmplex_settings.redis_key_prefix` per side under "
        f"`{probe.run_prefix}`: {cleanup}.",
        "One worker: pinned to core 1 as in proxy-throughput. Two workers (`--num_workers 2`): unpinned, sharing this "
        "2-core machine with wrk and the emulator (both on core 0) and Redis (unpinned); two workers cannot double "
        "throughput here, the ratio shows what a second worker gains when no core is free for it.",
        '"Redis admits / request": increments of the Redis rpm window counters during the measured run per '
        "request wrk counted (about 1.00 when each request was admitted through Redis; requests still in flight "
        'when wrk stops make it slightly above). "Redis CPU": the Redis server\'s CPU time (INFO cpu) over the run, '
        "whatever else used Redis meanwhile included.",
    ]


def _table(result: ScenarioResult, runs: dict[str, list[dict[str, Any]]]) -> None:
    local = _rps(runs, "local")["median"]
    none = _rps(runs, "none")["median"]
    rows = []
    for side in SIDES:
        ok = _ok(runs.get(side.key, []))
        if not ok:
            continue
        rps = _rps(runs, side.key)
        admits = _admits_per_request(ok)
        rows.append(
            [
                side.label,
                str(side.workers),
                fmt_spread(rps, 0),
                fmt(summary([o["p50_us"] / 1000 for o in ok])["median"], 1),
                fmt(summary([o["p99_us"] / 1000 for o in ok])["median"], 1),
                str(sum(o.get("errors", 0) for o in ok)),
                fmt(summary([(o.get("sut_cpu_share") or 0) * 100 for o in ok])["median"], 0, " %"),
                fmt(summary([(o.get("redis_cpu_share") or 0) * 100 for o in ok])["median"], 0, " %"),
                fmt(summary([o.get("loadgen_cpu_share", 0) * 100 for o in ok])["median"], 0, " %"),
                fmt(summary(admits)["median"], 2) if admits else "-",
                fmt_ratio(ratio(rps["median"], local)),
                fmt_ratio(ratio(rps["median"], none)),
            ]
        )
    columns = ["llmplex proxy", "workers", "req/s", "p50 ms", "p99 ms", "errors", "proxy CPU", "Redis CPU"]
    columns += ["loadgen CPU", "Redis admits / request", "vs in-process limits, 1 worker", "vs no limits"]
    result.table("non-streaming, 50 connections", columns, rows)


def _versus(runs: dict[str, list[dict[str, Any]]], a: str, b: str) -> tuple[float | None, str]:
    """(ratio of the medians a/b, "0.93x (1,400 vs 1,500 req/s, -7 %; per round 0.90..0.97x)")."""
    x, y = _rps(runs, a)["median"], _rps(runs, b)["median"]
    share = ratio(x, y)
    if share is None:
        return None, f"-: {a} or {b} has no successful run"
    paired = _paired(runs, a, b)
    rounds = f"; per round {fmt(paired['min'], 2)}..{fmt(paired['max'], 2)}x" if paired["n"] > 1 else ""
    return share, f"{share:.2f}x ({fmt(x, 0)} vs {fmt(y, 0)} req/s, {(share - 1) * 100:+.0f} %{rounds})"


def _admits_per_request(outs: list[dict[str, Any]]) -> list[float]:
    return [o["redis_admits"] / o["requests"] for o in _ok(outs) if "redis_admits" in o and o["requests"]]


def _targets(result: ScenarioResult, runs: dict[str, list[dict[str, Any]]]) -> None:
    share, text = _versus(runs, "redis", "local")
    admits = _admits_per_request(runs.get("redis", []))
    met: bool | None = None if share is None else share >= REDIS_TARGET
    if admits and min(admits) < MIN_ADMITS:  # Redis failed and the proxy fell open to local state
        met, text = None, f"{text}; not evaluated: only {min(admits):.2f} Redis admits per request in a round"
    result.target(
        7,
        "one worker: throughput with Redis-backed rpm/tpm limits at most 15 % below the same limits in-process",
        text,
        met,
    )
    for a, b, what in (
        ("redis-w2", "redis", "two workers vs one, both with Redis-backed limits"),
        ("local-w2", "local", "two workers vs one, limits in-process (per worker; info)"),
    ):
        two, text = _versus(runs, a, b)
        result.target(
            7, f"{what}; 2 cores shared with wrk, the emulator and Redis", text, None if two is None else "reported"
        )
