"""Issue 12: queue instead of 429. 400 requests offered at once to one group of 3 deployments with rpm limits.

llmplex only (LiteLLM's proxy answers 429 at once when every deployment is at its limit: nothing to compare
a wait with). Windows are shortened so a run takes seconds: ``llmplex_settings.rate_limit_window_seconds: 2``.
Two sides:
- "fits": ``rpm: 60`` per deployment counted per 2 s window (180 a window for the group): the 400 requests
  need three windows, so most wait, and all should be answered 200 within the 10 s wait bound;
- "overflow": ``rpm: 2`` per 2 s window, the rate of ``rpm: 60`` per minute (1 request/s per deployment):
  about 30 requests fit in the 10 s bound, every other one must get 429 with ``retry-after``, and only
  after waiting the bound.
Checks: every answer is 200 or 429; a 429 never comes before the bound; the upstream (the emulator's
``/_emulator/arrivals``) never sees more than ``rpm`` calls of a deployment in one window (the proxy's
in-process windows are aligned on ``time.monotonic()``, which every process of the machine shares).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.context import REPO, RESULTS_DIR, SUT_CORE, RunContext
from bench.procs import StartError, wait_for_http
from bench.proxies import free_port
from bench.scenarios import ScenarioResult
from bench.stats import fmt

REQUESTS = 400
WINDOW = 2.0  # seconds (llmplex_settings.rate_limit_window_seconds)
BOUND = 10.0  # router_settings.queue_timeout (the default)
DEPLOYMENTS = ("queue-a", "queue-b", "queue-c")
EARLY = 0.05  # seconds of timer slack a 429 may come before the bound


@dataclass(frozen=True)
class Side:
    key: str
    label: str
    rpm: int


SIDES = [
    Side("fits", "rpm 60 per 2 s window x 3 (400 requests need 3 windows)", 60),
    Side("overflow", "rpm 2 per 2 s window x 3 (= rpm 60 per minute)", 2),
]


def run(ctx: RunContext, result: ScenarioResult) -> None:
    up = ctx.upstream()
    raw: dict[str, Any] = {}
    for side in SIDES:
        proc = None
        try:
            proc, url = _start(ctx, side, up.openai_base)
            up.reset()  # also clears the arrivals
            # start at a window's beginning, so "fits" needs exactly three windows
            time.sleep(WINDOW - time.monotonic() % WINDOW + 0.05)
            answers = asyncio.run(_offer(url))
            arrivals = _arrivals(up.url)
        except StartError as exc:
            result.notes.append(f"{side.label}: could not run: the proxy did not start: {exc}")
            continue
        finally:
            if proc is not None:
                ctx.registry.stop(proc)
        raw[side.key] = {"answers": answers, "arrivals": arrivals}
        ctx.log(f"proxy-queue {side.key}: {Counter(a['status'] for a in answers)}")
    result.raw = raw
    result.notes += [
        f"{REQUESTS} requests sent at once (one aiohttp session, no connection limit) to one group of 3 deployments "
        f"(emulator, 0 ms); `llmplex_settings.rate_limit_window_seconds: {WINDOW:g}` (windows shortened so the run "
        f"takes seconds; `rpm` counts per window), `router_settings.queue_timeout: {BOUND:g}` (the default).",
        "Wait = time from sending the request to its answer (the upstream answers at once, so it is the time spent "
        "in the proxy's waiting line). Upstream calls per window: the emulator's arrival times, bucketed on "
        "the proxy's window boundaries. A 429's wait is the bound counted from when the request joined the line, "
        "plus the time the proxy took to take it in under the burst (the fastest answer's wait shows that part).",
        "LiteLLM is not run: its proxy answers 429 at once when every deployment is at its rpm limit.",
    ]
    _table(result, raw)


def _start(ctx: RunContext, side: Side, upstream_base: str) -> tuple[Any, str]:
    models = [
        {
            "model_name": "queue",
            "litellm_params": {
                "model": f"openai/{name}",
                "api_base": upstream_base,
                "api_key": "sk-bench",
                "rpm": side.rpm,
            },
        }
        for name in DEPLOYMENTS
    ]
    config = {
        "model_list": models,
        "router_settings": {"queue_timeout": BOUND, "queue_max_length": REQUESTS},
        "llmplex_settings": {"rate_limit_window_seconds": WINDOW},
    }
    path = RESULTS_DIR / "configs" / f"llmplex-queue-{side.key}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    port = free_port()
    code = "import sys; from llmplex.proxy.cli import main; sys.exit(main())"
    argv = [ctx.python, "-c", code, "--config", str(path), "--host", "127.0.0.1", "--port", str(port)]
    proc = ctx.registry.start(f"proxy-queue-{side.key}", argv, env=ctx.child_env(), core=SUT_CORE, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(proc, url + "/health/liveliness", timeout=60)
    except StartError:
        ctx.registry.stop(proc)
        raise
    return proc, url


async def _offer(url: str) -> list[dict[str, Any]]:
    import aiohttp

    body = {"model": "queue", "messages": [{"role": "user", "content": "queue"}]}
    timeout = aiohttp.ClientTimeout(total=BOUND * 3)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:

        async def one() -> dict[str, Any]:
            started = time.monotonic()
            try:
                async with session.post(url + "/v1/chat/completions", json=body) as response:
                    await response.read()
                    status, retry = response.status, response.headers.get("retry-after")
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, retry = 0, type(exc).__name__
            return {"status": status, "wait": time.monotonic() - started, "retry_after": retry}

        return await asyncio.gather(*[one() for _ in range(REQUESTS)])


def _arrivals(upstream_url: str) -> list[list[Any]]:
    import urllib.request

    with urllib.request.urlopen(upstream_url + "/_emulator/arrivals", timeout=5) as response:
        arrivals: list[list[Any]] = json.loads(response.read())["arrivals"]
    return arrivals


def _percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return " / ".join(fmt(v, 2) for v in (at(0.5), at(0.9), at(0.99), ordered[-1]))


def _table(result: ScenarioResult, raw: dict[str, Any]) -> None:
    rows = []
    for side in SIDES:
        data = raw.get(side.key)
        if data is None:
            continue
        answers, arrivals = data["answers"], data["arrivals"]
        statuses = Counter(a["status"] for a in answers)
        ok = [a["wait"] for a in answers if a["status"] == 200]
        refused = [a for a in answers if a["status"] == 429]
        early = [a for a in refused if a["wait"] < BOUND - EARLY]
        no_retry = [a for a in refused if not a["retry_after"]]
        other = sum(n for status, n in statuses.items() if status not in (200, 429))
        per_window = Counter((name, int(t // WINDOW)) for t, _, name in arrivals if name in DEPLOYMENTS)
        most = max(per_window.values(), default=0)
        rows.append(
            [
                side.label,
                str(statuses.get(200, 0)),
                str(len(refused)),
                str(other),
                fmt(min((a["wait"] for a in answers), default=float("nan")), 2),
                _percentiles(ok),
                _percentiles([a["wait"] for a in refused]),
                str(len(early)),
                str(len(no_retry)),
                f"{most} (limit {side.rpm})",
            ]
        )
        met = other == 0 and not early and not no_retry and most <= side.rpm
        result.target(
            12,
            f"queue, {side.key}: every request 200 or 429 only after the {BOUND:g} s bound (with retry-after); "
            "the upstream never over the limit in a window",
            f"{statuses.get(200, 0)} x 200, {len(refused)} x 429 ({len(early)} early), {other} other; "
            f"max {most} upstream calls per deployment and window (limit {side.rpm})",
            met,
        )
    columns = [
        "side",
        "200",
        "429",
        "other",
        "fastest answer s",
        "wait of 200s p50 / p90 / p99 / max s",
        "wait of 429s p50 / p90 / p99 / max s",
    ]
    columns += ["429 before the bound", "429 without retry-after", "most upstream calls per deployment and window"]
    result.table(
        f"{REQUESTS} requests at once, 3 deployments, window {WINDOW:g} s, wait bound {BOUND:g} s", columns, rows
    )
