"""Issue 15, the rows that need a real proxy process: a batch through ``llmplex`` (SQLite) with live chat
requests alongside, and kill -9 at ~30 % then a restart.

Live latency: while the batch runs, one request at a time alternates between the proxy and the emulator
directly (same model, 0 ms), so both sides see the same loaded emulator; added latency = p50 proxy - p50 direct.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import math
import os
import signal
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.context import REPO, SUT_CORE, RunContext
from bench.procs import Proc, wait_for_http
from bench.proxies import MASTER_KEY, free_port
from bench.scenarios import ScenarioResult
from bench.stats import fmt

BATCH_MODEL = "bench-delay-100"
LIVE_MODEL = "bench"  # 0 ms: what is measured is the proxy's own added time
CONCURRENCY = 256  # llmplex_settings.batch_concurrency (the default): ~2,500 lines/s at 100 ms
_LIVE_BODY = json.dumps({"model": LIVE_MODEL, "messages": [{"role": "user", "content": "hi"}]}).encode()


def _config(tmp: Path, name: str, upstream_base: str, lease: float, database_url: str | None = None) -> Path:
    params = {"api_base": upstream_base, "api_key": "sk-bench"}
    models = [
        {"model_name": m, "litellm_params": {"model": f"openai/{m}", **params}} for m in (BATCH_MODEL, LIVE_MODEL)
    ]
    config: dict[str, Any] = {
        "model_list": models,
        "general_settings": {"master_key": MASTER_KEY},
        "llmplex_settings": {
            "data_dir": str(tmp / name),
            "batch_concurrency": CONCURRENCY,
            "batch_lease_seconds": lease,
        },
    }
    if database_url:
        config["general_settings"]["database_url"] = database_url
    path = tmp / f"{name}.yaml"
    path.write_text(json.dumps(config))
    return path


def _start(ctx: RunContext, name: str, config: Path, port: int) -> Proc:
    code = "import sys; from llmplex.proxy.cli import main; sys.exit(main())"
    argv = [ctx.python, "-c", code, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    proc = ctx.registry.start(name, argv, env=ctx.child_env(), core=SUT_CORE, cwd=REPO)
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    wait_for_http(proc, f"http://127.0.0.1:{port}/health/liveliness", timeout=120, headers=headers)
    return proc


def _client(port: int) -> Any:
    import openai

    return openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=MASTER_KEY, max_retries=0, timeout=60)


def _create(client: Any, n: int) -> str:
    lines = (
        json.dumps(
            {
                "custom_id": f"r{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": BATCH_MODEL, "messages": [{"role": "user", "content": f"prompt number {i}"}]},
            }
        )
        for i in range(n)
    )
    data = ("\n".join(lines) + "\n").encode()
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    return str(batch.id)


def _post(conn: http.client.HTTPConnection, path: str, key: str) -> float:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    t0 = time.perf_counter()
    conn.request("POST", path, body=_LIVE_BODY, headers=headers)
    resp = conn.getresponse()
    resp.read()
    elapsed = time.perf_counter() - t0
    if resp.status != 200:
        raise RuntimeError(f"live request answered {resp.status}")
    return elapsed * 1000


def throughput_and_live(ctx: RunContext, tmp: Path, n: int) -> dict[str, Any]:
    """The batch through a real proxy (SQLite), a paired live loop alongside; lines/s from the batch's own stamps."""
    up = ctx.upstream()
    port = free_port()
    proc = _start(ctx, "proxy-batch", _config(tmp, "live", up.openai_base, 60.0), port)
    up_split = urlsplit(up.url)
    proxy_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    direct_conn = http.client.HTTPConnection(up_split.hostname or "127.0.0.1", up_split.port, timeout=30)
    via_proxy: list[float] = []
    direct: list[float] = []
    peak_rss = 0.0
    try:
        with _client(port) as client:
            idle_proxy: list[float] = []
            idle_direct: list[float] = []
            for i in range(220):  # the first 20 warm both connections; the rest: added latency with no batch
                a = _post(proxy_conn, "/v1/chat/completions", MASTER_KEY)
                b = _post(direct_conn, "/v1/chat/completions", "sk-bench")
                if i >= 20:
                    idle_proxy.append(a)
                    idle_direct.append(b)
            batch_id = _create(client, n)
            t0 = time.perf_counter()  # the batch's own stamps are whole seconds
            deadline = time.monotonic() + 1800
            next_poll = 0.0
            batch = client.batches.retrieve(batch_id)
            while batch.status not in ("completed", "failed", "cancelled", "expired") and time.monotonic() < deadline:
                via_proxy.append(_post(proxy_conn, "/v1/chat/completions", MASTER_KEY))
                direct.append(_post(direct_conn, "/v1/chat/completions", "sk-bench"))
                if time.monotonic() >= next_poll:
                    peak_rss = max(peak_rss, proc.rss_mb())
                    batch = client.batches.retrieve(batch_id)
                    next_poll = time.monotonic() + 0.5  # a retrieve counts the lines: not more often
                time.sleep(0.005)  # a chat user's pace, not a load generator
            counts = batch.request_counts
            wall = time.perf_counter() - t0  # to the poll that saw it end: up to 0.5 s (plus a live pair) late
    finally:
        proxy_conn.close()
        direct_conn.close()
        ctx.registry.stop(proc)
    return {
        "status": batch.status,
        "n": n,
        "completed": counts.completed if counts else 0,
        "failed": counts.failed if counts else 0,
        "wall_s": wall,
        "peak_rss_mb": peak_rss,
        "idle_added_ms": _p50(idle_proxy) - _p50(idle_direct),
        "live_proxy_ms": via_proxy,
        "live_direct_ms": direct,
    }


def kill_restart(ctx: RunContext, tmp: Path, n: int) -> dict[str, Any]:
    """kill -9 once ~30 % of the lines are done, count the lines claimed at that moment (the in-flight bound:
    sending, claimed ahead, or answered but not yet written), restart, and count what the emulator received."""
    up = ctx.upstream()
    config = _config(tmp, "kill", up.openai_base, 3.0)  # a short lease: the restart need not wait a minute
    port = free_port()
    up.reset()
    proc = _start(ctx, "proxy-batch-kill", config, port)
    try:
        with _client(port) as client:
            batch_id = _create(client, n)
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                counts = client.batches.retrieve(batch_id).request_counts
                if counts is not None and counts.completed >= n * 0.3:
                    break
                time.sleep(0.05)
        os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(timeout=10)
    finally:
        ctx.registry.stop(proc)
    with sqlite3.connect(tmp / "kill" / "llmplex.db") as db:
        (in_flight,) = db.execute("SELECT count(*) FROM llmplex_batch_lines WHERE state = 1").fetchone()
        (done_at_kill,) = db.execute("SELECT count(*) FROM llmplex_batch_lines WHERE state = 2").fetchone()
    proc = _start(ctx, "proxy-batch-restart", config, port)
    try:
        with _client(port) as client:
            deadline = time.monotonic() + 600
            batch = client.batches.retrieve(batch_id)
            while batch.status != "completed" and time.monotonic() < deadline:
                time.sleep(0.2)
                batch = client.batches.retrieve(batch_id)
            ids: list[str] = []
            if batch.output_file_id:
                text = client.files.content(batch.output_file_id).text
                ids = [json.loads(line)["custom_id"] for line in text.splitlines()]
    finally:
        ctx.registry.stop(proc)
    received = up.stats()["received"]
    return {
        "n": n,
        "status": batch.status,
        "done_at_kill": done_at_kill,
        "in_flight_at_kill": in_flight,
        "lost": len({f"r{i}" for i in range(n)} - set(ids)),
        "duplicated": len(ids) - len(set(ids)),
        "resent": received - n,
    }


def replicas(ctx: RunContext, tmp: Path, n: int, pg_url: str, count: int) -> dict[str, Any]:
    """``count`` proxies on one PostgreSQL database run one batch (created on the first): lines/s from creation
    to the end, and whether every line is in the output exactly once. Both share the SUT core."""
    up = ctx.upstream()
    ports = [free_port() for _ in range(count)]
    procs = []
    try:
        for i, port in enumerate(ports):
            config = _config(tmp, f"replica{count}-{i}", up.openai_base, 10.0, pg_url)
            procs.append(_start(ctx, f"proxy-batch-replica{count}-{i}", config, port))
        with _client(ports[0]) as client:
            batch_id = _create(client, n)
            t0 = time.perf_counter()
            deadline = time.monotonic() + 1800
            batch = client.batches.retrieve(batch_id)
            while batch.status != "completed" and time.monotonic() < deadline:
                time.sleep(0.25)
                batch = client.batches.retrieve(batch_id)
            wall = time.perf_counter() - t0
            ids: list[str] = []
            if batch.output_file_id:
                text = client.files.content(batch.output_file_id).text
                ids = [json.loads(line)["custom_id"] for line in text.splitlines()]
    finally:
        for proc in procs:
            ctx.registry.stop(proc)
    return {
        "replicas": count,
        "n": n,
        "status": batch.status,
        "wall_s": wall,
        "rate": n / wall,
        "lost": len({f"r{i}" for i in range(n)} - set(ids)),
        "duplicated": len(ids) - len(set(ids)),
    }


def _p50(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def proxy_rows(ctx: RunContext, result: ScenarioResult, tmp: Path, n: int) -> None:
    """Both proxy rows, once per run (after the rounds): tables, targets and raw numbers on ``result``."""
    note = "" if n == 100_000 else f"measured with {n:,} lines (--quick), not 100,000"
    ctx.log(f"batch-jobs: a batch of {n:,} lines through the proxy with live requests alongside")
    try:
        live = throughput_and_live(ctx, tmp, n)
    except Exception as exc:  # reported; the other rows stand
        live = {"error": f"{type(exc).__name__}: {exc}"}
    kill_n = 3_000 if ctx.settings.quick else 20_000
    ctx.log(f"batch-jobs: kill -9 at ~30 % of {kill_n:,} lines, then a restart")
    try:
        killed = kill_restart(ctx, tmp, kill_n)
    except Exception as exc:
        killed = {"error": f"{type(exc).__name__}: {exc}"}
    result.raw["proxy"] = {
        "live": {k: v for k, v in live.items() if not k.startswith("live_")},
        "kill": killed,
    }
    _replica_rows(ctx, result, tmp, 3_000 if ctx.settings.quick else 50_000)
    if "error" in live:
        result.notes.append(f"proxy batch run failed: {live['error']}")
    else:
        rate = live["completed"] / live["wall_s"] if live["wall_s"] > 0 else math.nan
        added = _p50(live["live_proxy_ms"]) - _p50(live["live_direct_ms"])
        result.raw["proxy"]["live"].update(
            {
                "rate": rate,
                "live_p50_proxy_ms": _p50(live["live_proxy_ms"]),
                "live_p50_direct_ms": _p50(live["live_direct_ms"]),
            }
        )
        result.table(
            f"{n:,} lines through the llmplex proxy (SQLite, batch_concurrency {CONCURRENCY}), live chat alongside",
            [
                "batch",
                "lines/s",
                "failed",
                "peak RSS MiB",
                "live requests",
                "live p50 proxy",
                "live p50 direct",
                "added",
                "added, no batch",
            ],
            [
                [
                    f"{live['status']} in {live['wall_s']:.2f} s",
                    fmt(rate, 0),
                    str(live["failed"]),
                    fmt(live["peak_rss_mb"], 0),
                    str(len(live["live_proxy_ms"])),
                    fmt(_p50(live["live_proxy_ms"]), 2, " ms"),
                    fmt(_p50(live["live_direct_ms"]), 2, " ms"),
                    fmt(added, 2, " ms"),
                    fmt(live["idle_added_ms"], 2, " ms"),
                ]
            ],
        )
        result.target(15, "proxy batch (SQLite), lines/s", fmt(rate, 0, " lines/s"), "reported", note)
        result.target(
            15, "live chat added latency p50 <= 2 ms during the batch", fmt(added, 2, " ms"), added <= 2.0, note
        )
        peak = live["peak_rss_mb"]
        result.target(15, "proxy peak RSS during the batch <= 150 MB", fmt(peak, 0, " MiB"), peak <= 150, note)
    if "error" in killed:
        result.notes.append(f"kill -9 run failed: {killed['error']}")
        return
    result.table(
        f"kill -9 at ~30 % of {kill_n:,} lines, restart (lease 3 s)",
        ["done at kill", "claimed at kill (bound)", "re-sent", "lost", "duplicated", "final status"],
        [
            [
                str(killed["done_at_kill"]),
                str(killed["in_flight_at_kill"]),
                str(killed["resent"]),
                str(killed["lost"]),
                str(killed["duplicated"]),
                killed["status"],
            ]
        ],
    )
    ok = killed["lost"] == 0 and killed["duplicated"] == 0 and 0 <= killed["resent"] <= killed["in_flight_at_kill"]
    result.target(
        15,
        "kill -9 at ~30 %: 0 lines lost, re-sent <= in flight",
        f"lost {killed['lost']}, re-sent {killed['resent']} <= {killed['in_flight_at_kill']}",
        ok,
    )


def _replica_rows(ctx: RunContext, result: ScenarioResult, tmp: Path, n: int) -> None:
    from bench.scenarios.batch_jobs import PG_HOST, _pg_admin

    outs = []
    for count in (1, 2):
        name = f"llmplex_bench_replicas_{count}"
        ctx.log(f"batch-jobs: {n:,} lines on {count} replica(s), one PostgreSQL")
        try:
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            _pg_admin(f'CREATE DATABASE "{name}"')
            outs.append(replicas(ctx, tmp, n, f"{PG_HOST}/{name}", count))
        except Exception as exc:  # reported; the other rows stand
            result.notes.append(f"{count} replica run failed: {type(exc).__name__}: {exc}")
            return
        finally:
            with contextlib.suppress(Exception):
                _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    result.raw["proxy"]["replicas"] = outs
    result.table(
        f"{n:,} lines, proxies on one PostgreSQL (both on the SUT core)",
        ["replicas", "lines/s", "lost", "duplicated", "final status"],
        [[str(o["replicas"]), fmt(o["rate"], 0), str(o["lost"]), str(o["duplicated"]), o["status"]] for o in outs],
    )
    two = outs[-1]
    result.target(
        15,
        "two replicas on one PostgreSQL: every line exactly once",
        f"lost {two['lost']}, duplicated {two['duplicated']}; {two['rate']:,.0f} vs {outs[0]['rate']:,.0f} lines/s",
        two["lost"] == 0 and two["duplicated"] == 0 and two["status"] == "completed",
    )
