"""Issue 16: virtual keys. Throughput with a virtual key (auth from the cache, per-request spend written in
batches) against the master key on the same proxy, on SQLite and on PostgreSQL; ``/key/generate`` latency;
how long until a request's spend shows in ``/key/info``.

One proxy per database (CLI, one worker, pinned to the system-under-test core), a priced model name on the
emulator (``gpt-4o-mini``: every request has a cost to add). Master-key and virtual-key runs alternate within
each round against the same proxy. PostgreSQL is the machine's server on 127.0.0.1:5432 (a database created
for the run and dropped after); without it that side is reported as not run.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import time
import urllib.request
from typing import Any

from bench.context import REPO, RESULTS_DIR, SUT_CORE, NotAvailable, RunContext
from bench.procs import StartError, wait_for_http
from bench.proxies import free_port
from bench.scenarios import ScenarioResult
from bench.stats import fmt, fmt_ratio, fmt_spread, summary
from bench.wrk import run_python_load, run_wrk

CONNECTIONS = 50
MASTER = "sk-bench-master-" + secrets.token_hex(8)
MODEL = "bench-priced"
PG = "postgresql://postgres@127.0.0.1:5432"
GENERATE_CALLS = 50
TARGET_RATIO = 0.9
TARGET_GENERATE_MS = 20.0
TARGET_SPEND_S = 2.0


def _http(method: str, url: str, body: dict[str, Any] | None = None, key: str = MASTER) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


def _pg_admin(statement: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(f"{PG}/postgres", timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def _load(ctx: RunContext, url: str, key: str, seconds: float) -> dict[str, Any]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    wrk = ctx.wrk()
    if wrk:
        return run_wrk(wrk, url, body, key, connections=CONNECTIONS, seconds=seconds)
    return run_python_load(url, body, key, connections=CONNECTIONS, seconds=seconds)


def _cpu_load(ctx: RunContext, proc: Any, url: str, key: str, seconds: float) -> dict[str, Any]:
    """A load run plus the proxy's CPU time per answered request (steadier than req/s on a busy machine)."""
    cpu0 = proc.cpu_seconds()
    out = _load(ctx, url, key, seconds)
    if out.get("requests"):
        out["cpu_us"] = (proc.cpu_seconds() - cpu0) / out["requests"] * 1e6
    return out


def _start(ctx: RunContext, name: str, database_url: str) -> tuple[Any, str]:
    up = ctx.upstream()
    params = {"model": "openai/gpt-4o-mini", "api_base": up.openai_base, "api_key": "sk-bench"}
    config = {
        "model_list": [{"model_name": MODEL, "litellm_params": params}],
        "general_settings": {"master_key": MASTER, "database_url": database_url},
    }
    path = RESULTS_DIR / "configs" / f"llmplex-keys-{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    port = free_port()
    code = "import sys; from llmplex.proxy.cli import main; sys.exit(main())"
    argv = [ctx.python, "-c", code, "--config", str(path), "--host", "127.0.0.1", "--port", str(port)]
    proc = ctx.registry.start(f"proxy-keys-{name}", argv, env=ctx.child_env(), core=SUT_CORE, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(proc, url + "/health/liveliness", timeout=60)
    return proc, url


def _side(ctx: RunContext, name: str, database_url: str) -> dict[str, Any]:
    proc, url = _start(ctx, name, database_url)
    try:
        generate_ms = []
        for _ in range(GENERATE_CALLS):
            start = time.perf_counter()
            made = _http("POST", url + "/key/generate", {"models": [MODEL]})
            generate_ms.append((time.perf_counter() - start) * 1000)
        key = made["key"]
        chat = url + "/v1/chat/completions"
        s = ctx.settings
        _load(ctx, chat, MASTER, s.wrk_warmup_seconds)
        _load(ctx, chat, key, s.wrk_warmup_seconds)
        rounds: list[dict[str, Any]] = []
        for r in range(s.rounds):
            order = [("master", MASTER), ("virtual", key)]
            if r % 2:
                order.reverse()
            out = {side: _cpu_load(ctx, proc, chat, k, s.wrk_seconds) for side, k in order}
            rounds.append(out)
            ctx.log(
                f"proxy-keys {name} round {r + 1}: "
                + ", ".join(f"{k} {v.get('rps', 0):.0f} req/s" for k, v in out.items())
            )
        time.sleep(1.0)  # let the spend writer catch up with the load
        fresh = _http("POST", url + "/key/generate", {"models": [MODEL]})["key"]
        _http("POST", chat, {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}, key=fresh)
        sent = time.perf_counter()
        spend_s = None
        while time.perf_counter() - sent < 10:
            if _http("GET", url + f"/key/info?key={_sha(fresh)}")["info"]["spend"] > 0:
                spend_s = time.perf_counter() - sent
                break
            time.sleep(0.02)
        return {"generate_ms": generate_ms, "rounds": rounds, "spend_visible_s": spend_s, "rss_mb": proc.rss_mb()}
    finally:
        ctx.registry.stop(proc)


def _sha(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()


def run(ctx: RunContext, result: ScenarioResult) -> None:
    ctx.upstream()
    sides: dict[str, dict[str, Any]] = {}
    sqlite_file = RESULTS_DIR / "tmp" / f"keys-{os.getpid()}.db"
    sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        sides["SQLite"] = _side(ctx, "sqlite", f"sqlite:///{sqlite_file}")
    finally:
        for suffix in ("", "-wal", "-shm"):
            sqlite_file.with_name(sqlite_file.name + suffix).unlink(missing_ok=True)
    database = f"llmplex_bench_{secrets.token_hex(4)}"
    try:
        _pg_admin(f'CREATE DATABASE "{database}"')
    except Exception as exc:  # no PostgreSQL here: say so, keep the SQLite numbers
        result.notes.append(f"PostgreSQL: could not run: {type(exc).__name__}: {exc}")
    else:
        try:
            sides["PostgreSQL"] = _side(ctx, "postgresql", f"{PG}/{database}")
        except (StartError, NotAvailable) as exc:
            result.notes.append(f"PostgreSQL: could not run: {exc}")
        finally:
            _pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    result.raw = sides
    _report(ctx, result, sides)


def _report(ctx: RunContext, result: ScenarioResult, sides: dict[str, dict[str, Any]]) -> None:
    rows = []
    for name, side in sides.items():
        ok = [r for r in side["rounds"] if "error" not in r["master"] and "error" not in r["virtual"]]
        ratios = summary([r["virtual"]["rps"] / r["master"]["rps"] for r in ok if r["master"]["rps"]])
        master = summary([r["master"]["rps"] for r in ok])
        virtual = summary([r["virtual"]["rps"] for r in ok])
        p50 = statistics.median(side["generate_ms"])
        spend = side["spend_visible_s"]
        errors = sum(r[k].get("errors", 0) for r in ok for k in ("master", "virtual"))
        cpu = {k: summary([r[k]["cpu_us"] for r in ok if "cpu_us" in r[k]])["median"] for k in ("master", "virtual")}
        rows.append(
            [
                name,
                fmt_spread(master, 0),
                fmt_spread(virtual, 0),
                fmt_spread(ratios, 2),
                fmt(cpu["master"], 0),
                fmt(cpu["virtual"], 0),
                str(errors),
                fmt(p50, 1),
                "-" if spend is None else fmt(spend, 2),
                fmt(side["rss_mb"], 0),
            ]
        )
        met = ratios["median"] >= TARGET_RATIO if ratios.get("n") else None
        result.target(
            16, f"virtual-key throughput >= {TARGET_RATIO} x master key ({name})", fmt_ratio(ratios["median"]), met
        )
        result.target(
            16, f"/key/generate p50 <= {TARGET_GENERATE_MS:.0f} ms ({name})", f"{p50:.1f} ms", p50 <= TARGET_GENERATE_MS
        )
        result.target(
            16,
            f"spend in /key/info <= {TARGET_SPEND_S:.0f} s after the request ({name})",
            "-" if spend is None else f"{spend:.2f} s",
            spend is not None and spend <= TARGET_SPEND_S,
        )
    columns = [
        "database",
        "master key req/s",
        "virtual key req/s",
        "virtual / master",
        "master CPU us/req",
        "virtual CPU us/req",
        "errors",
        "/key/generate p50 ms",
        "spend visible after s",
        "proxy RSS MiB",
    ]
    result.table(f"non-streaming, {CONNECTIONS} connections, one worker", columns, rows)
    s = ctx.settings
    result.notes.append(
        f"{s.rounds} round(s) of {s.wrk_seconds} s per side after a {s.wrk_warmup_seconds} s warm-up of each; "
        "master and virtual key alternate within a round on the same proxy; the virtual key has a model list "
        "and no limits; every request is priced (gpt-4o-mini) and its spend and log row are written."
    )
