"""Issue 14: the endpoints beyond chat through the proxy.

- ``/v1/embeddings`` throughput (16 short inputs per request, 50 connections): llmplex against the bare
  Starlette + aiohttp pass-through (the floor) and LiteLLM;
- ``/v1/messages`` (Anthropic format in) to an OpenAI-format upstream: added latency at concurrency 1 against
  the same request straight to the emulator's chat endpoint, and the streaming rate against llmplex's own
  chat streaming rate.
"""

from __future__ import annotations

from typing import Any

from bench.context import RunContext
from bench.httpload import run_client, sequential_latency
from bench.proxies import LABELS, MASTER_KEY, MODEL, chat_body
from bench.scenarios import ScenarioResult
from bench.scenarios.proxy_common import measured_load, target_url
from bench.scenarios.sdk_common import rotated
from bench.stats import fmt, percentile, summary

CONNECTIONS = 50
WARMUP = 20
EMBED_TARGET = "/v1/embeddings through the proxy >= 0.75 x a bare pass-through"
EMBED_BODY: dict[str, Any] = {
    "model": MODEL,
    "input": [f"a short document number {i}" for i in range(16)],
    "encoding_format": "float",
}


def messages_body(stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
    }
    if stream:
        body["stream"] = True
    return body


def run(ctx: RunContext, result: ScenarioResult) -> None:
    up = ctx.upstream()
    s = ctx.settings
    _embeddings(ctx, result)
    # /v1/messages added latency at concurrency 1
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    target = target_url(ctx, "llmplex", result)
    if target is None:
        result.target(14, "/v1/messages -> OpenAI upstream: added latency", "llmplex proxy did not run", None)
        return
    proxy = target[1]
    assert proxy is not None
    per_round = max(1, s.latency_requests // s.rounds)
    samples: dict[str, list[float]] = {"direct": [], "chat": [], "messages": []}
    for r in range(s.rounds):
        for name in rotated(list(samples), r):
            if name == "direct":
                url, body = up.openai_base + "/chat/completions", chat_body(MODEL)
            elif name == "chat":
                url, body = proxy.chat_url, chat_body(MODEL)
            else:
                url, body = proxy.url + "/v1/messages", messages_body()
            out = run_client(sequential_latency(url, body, headers, per_round, WARMUP))
            samples[name].extend(out["latencies_ms"])
    d50, d99 = percentile(samples["direct"], 50), percentile(samples["direct"], 99)
    m50, m99 = percentile(samples["messages"], 50), percentile(samples["messages"], 99)
    rows = []
    for name, label in (
        ("direct", "direct chat to the emulator"),
        ("chat", "llmplex /v1/chat/completions (reference)"),
        ("messages", "llmplex /v1/messages"),
    ):
        p50, p99 = percentile(samples[name], 50), percentile(samples[name], 99)
        added = name != "direct"
        rows.append(
            [
                label,
                fmt(p50, 2),
                fmt(p99, 2),
                fmt(p50 - d50, 2) if added else "-",
                fmt(p99 - d99, 2) if added else "-",
                str(len(samples[name])),
            ]
        )
    result.table(
        "/v1/messages (Anthropic in) -> OpenAI-format upstream, concurrency 1 (ms)",
        ["target", "p50", "p99", "added p50", "added p99", "requests"],
        rows,
    )
    result.target(14, "/v1/messages -> OpenAI upstream: added p50 <= 1 ms", f"{m50 - d50:.2f} ms", m50 - d50 <= 1.0)
    result.target(14, "/v1/messages -> OpenAI upstream: added p99 <= 3 ms", f"{m99 - d99:.2f} ms", m99 - d99 <= 3.0)
    # streaming rate: /v1/messages vs chat, both through llmplex
    rates: dict[str, float] = {}
    for name, url, body in (
        ("chat stream", proxy.chat_url, chat_body(MODEL, True)),
        ("messages stream", proxy.url + "/v1/messages", messages_body(True)),
    ):
        outs = [measured_load(ctx, "llmplex", url, proxy, body, CONNECTIONS) for _ in range(s.rounds)]
        rates[name] = summary([o["rps"] for o in outs if "error" not in o])["median"]
    result.table(
        "streaming through llmplex, 50 connections (req/s)",
        ["endpoint", "req/s"],
        [[name, fmt(rate, 0)] for name, rate in rates.items()],
    )
    ratio = rates["messages stream"] / rates["chat stream"] if rates.get("chat stream") else 0.0
    result.target(14, "/v1/messages streaming >= 0.75 x chat streaming", f"{ratio:.2f}x", ratio >= 0.75)
    result.notes.append(
        f"Embeddings: 16 short inputs per request, {CONNECTIONS} connections, {s.rounds} round(s). "
        f"Messages latency: one client, {per_round} requests per round after {WARMUP} warm-up ones; added = the "
        "percentile minus the same percentile of chat requests straight to the emulator."
    )


def _embeddings(ctx: RunContext, result: ScenarioResult) -> None:
    runs: dict[str, list[float]] = {}
    for r in range(ctx.settings.rounds):
        for name in rotated(["floor", "llmplex", "litellm"], r):
            target = target_url(ctx, name, result)
            if target is None or target[1] is None:
                continue
            url = target[1].url + "/v1/embeddings"
            out = measured_load(ctx, name, url, target[1], EMBED_BODY, CONNECTIONS)
            if "error" not in out and not out.get("errors"):
                runs.setdefault(name, []).append(out["rps"])
            elif "error" in out or out.get("errors"):
                result.notes.append(f"{LABELS[name]} embeddings: errors {out.get('error') or out.get('errors')}")
    medians = {name: summary(values)["median"] for name, values in runs.items()}
    floor = medians.get("floor")
    result.table(
        "/v1/embeddings, 16 inputs per request, 50 connections",
        ["target", "req/s", "vs floor"],
        [[LABELS[n], fmt(v, 0), f"{v / floor:.2f}x" if floor else "-"] for n, v in medians.items()],
    )
    if floor and "llmplex" in medians:
        ratio = medians["llmplex"] / floor
        result.target(
            14, "/v1/embeddings through the proxy >= 0.75 x a bare pass-through", f"{ratio:.2f}x", ratio >= 0.75
        )
    else:
        result.target(14, "/v1/embeddings through the proxy >= 0.75 x a bare pass-through", "did not run", None)
