"""PNG plots (matplotlib, Agg) from a results dict: throughput bars, latency CDFs, the hedging trade-off."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from bench.context import REPO
from bench.proxies import LABELS
from bench.stats import percentile

PLOTS = REPO / "bench" / "plots"
COLORS = {
    "llmplex": "#1f77b4",
    "litellm": "#d62728",
    "litellm-tuned": "#ff9896",
    "litellm-workers": "#c49c94",
    "floor": "#7f7f7f",
    "direct": "#2ca02c",
    "aiohttp": "#7f7f7f",
}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, name: str) -> str:
    PLOTS.mkdir(parents=True, exist_ok=True)
    path = PLOTS / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return str(path.relative_to(REPO))


def _label(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _bars(name: str, title: str, ylabel: str, groups: dict[str, dict[str, float]], log: bool = False) -> str:
    """Grouped bars: groups = {group label: {series key: value}}."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    series = list(dict.fromkeys(k for g in groups.values() for k in g))
    width = 0.8 / max(1, len(series))
    for i, key in enumerate(series):
        xs = [j + i * width for j in range(len(groups))]
        ys = [g.get(key, 0.0) for g in groups.values()]
        bars = ax.bar(xs, ys, width, label=LABELS.get(key, key), color=COLORS.get(key))
        ax.bar_label(bars, labels=[_label(y) for y in ys], fontsize=7)
    ax.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(groups))], list(groups))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    return _save(fig, name)


def _cdf(name: str, title: str, samples: dict[str, list[float]], xlabel: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for key, values in samples.items():
        if not values:
            continue
        ordered = sorted(values)
        ys = [(i + 1) / len(ordered) for i in range(len(ordered))]
        ax.step(ordered, ys, where="post", label=LABELS.get(key, key), color=COLORS.get(key))
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of requests")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, name)


def sdk_batch(raw: dict[str, Any]) -> list[str]:
    groups: dict[str, dict[str, float]] = {}
    for side, sizes in raw["runs"].items():
        for n, outs in sizes.items():
            vals = [o["ok"] / o["wall_s"] for o in outs if "error" not in o]
            if vals:
                groups.setdefault(f"{int(n):,} prompts", {})[side] = statistics.median(vals)
    return [_bars("sdk-batch-throughput", "batch_completion, 100 ms upstream: completed req/s", "req/s", groups, True)]


def hedging(raw: dict[str, Any]) -> list[str]:
    modes = {k: v for k, v in raw["modes"].items() if "latencies_ms" in v}
    if not modes:
        return []
    out = [
        _cdf(
            "hedging-cdf",
            "Hedging: latency CDF (5 % of primaries take 3 s)",
            {k: v["latencies_ms"] for k, v in modes.items()},
            "latency (ms)",
        )
    ]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    n = raw["requests"]
    for label, v in modes.items():
        extra = (v["upstream"].get("received", 0) - n) / n * 100
        p99 = percentile(v["latencies_ms"], 99)
        ax.scatter([extra], [p99], s=60)
        ax.annotate(label, (extra, p99), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("extra upstream requests (%)")
    ax.set_ylabel("p99 latency (ms)")
    ax.set_title("Hedging trade-off: tail latency vs extra requests")
    ax.grid(alpha=0.3)
    out.append(_save(fig, "hedging-tradeoff"))
    return out


def proxy_throughput(raw: dict[str, Any]) -> list[str]:
    groups = {
        mode: {
            name: statistics.median([o["rps"] for o in outs if "error" not in o] or [0.0])
            for name, outs in runs.items()
        }
        for mode, runs in raw["runs"].items()
    }
    title = "Proxy throughput, one worker, 50 connections (log scale)"
    return [_bars("proxy-throughput", title, "req/s", groups, True)]


def footprint(raw: dict[str, Any]) -> list[str]:
    proxies = raw.get("proxies", {})
    if not proxies:
        return []
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    panels = [("startup_s", "start to healthy (s)"), ("idle_rss_mb", "idle RSS (MiB)")]
    for ax, (key, title) in zip(axes, panels, strict=True):
        names = list(proxies)
        values = [proxies[n][key] for n in names]
        bars = ax.bar([LABELS[n] for n in names], values, color=[COLORS.get(n) for n in names])
        ax.bar_label(bars, labels=[_label(v) for v in values], fontsize=8)
        ax.set_title(title)
        ax.tick_params(axis="x", labelsize=7, labelrotation=15)
    return [_save(fig, "footprint-proxy")]


def proxy_latency(raw: dict[str, Any]) -> list[str]:
    return [_cdf("proxy-latency-cdf", "Latency at concurrency 1 (non-streaming)", raw["latencies_ms"], "latency (ms)")]


def proxy_streams(raw: dict[str, Any]) -> list[str]:
    return [_cdf("proxy-ttft-cdf", "Time to first token on streams", raw["ttft_ms"], "time to first token (ms)")]


def soak(raw: dict[str, Any]) -> list[str]:
    curve = raw.get("curve", [])
    if len(curve) < 2:
        return []
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.plot([c["requests"] for c in curve], [c["rss_mb"] for c in curve], marker="o", color=COLORS["llmplex"])
    ax.axvline(curve[1]["requests"], color="#7f7f7f", linestyle="--", linewidth=1, label="end of warm-up")
    ax.set_xlabel("requests served")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title("llmplex proxy, one worker: RSS of the process group")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return [_save(fig, "soak-rss")]


MAKERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "sdk-batch": sdk_batch,
    "hedging": hedging,
    "proxy-throughput": proxy_throughput,
    "proxy-latency": proxy_latency,
    "proxy-streams": proxy_streams,
    "footprint": footprint,
    "soak": soak,
}


def render(data: dict[str, Any]) -> None:
    """Attach plot paths to each scenario dict (in place)."""
    for scenario in data["scenarios"]:
        maker = MAKERS.get(scenario["name"])
        if maker is None or scenario["status"] != "ok" or not scenario["raw"]:
            continue
        try:
            scenario["plots"] = maker(scenario["raw"])
        except (KeyError, ValueError, TypeError) as exc:
            scenario["notes"].append(f"plot failed: {exc}")
