"""Run the selected scenarios, always stopping every child process, then save results, plots and report."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from bench import setup_env
from bench.context import LOAD_CORE, RESULTS_DIR, NotAvailable, RunContext, Settings
from bench.interference import InterferenceMonitor
from bench.procs import ProcessRegistry
from bench.scenarios import ScenarioResult, registry


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(names: list[str], settings: Settings, argv: list[str]) -> dict[str, Any]:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_file = RESULTS_DIR / f"run-{stamp}.log"
    ctx = RunContext(settings, ProcessRegistry(RESULTS_DIR / "logs"), log_file)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {LOAD_CORE})  # the harness is a load-side client
    started = time.perf_counter()
    setup: dict[str, Any] = {"wrk": ctx.wrk()}
    try:
        ctx.litellm_python()
    except NotAvailable as exc:
        setup["litellm_error"] = str(exc)
    info = setup_env.machine_info(setup["wrk"])
    ctx.log(f"load average at start: {info['load_average_at_start']}")
    results: list[ScenarioResult] = []
    table = registry()
    measure_start = time.perf_counter()
    monitor = InterferenceMonitor()
    monitor.start()
    try:
        for name in names:
            title, runner = table[name]
            t0 = time.monotonic()
            results.append(_run_one(ctx, name, title, runner))
            results[-1].foreign_cpu = monitor.window(t0, time.monotonic())
    finally:
        ctx.stop()
        monitor.stop()
    info["foreign_cpu"] = monitor.window(0.0, time.monotonic())
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return {
        "command": "python -m bench " + " ".join(shlex.quote(a) for a in argv),
        "started": stamp,
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "settings": dataclasses.asdict(settings),
        "machine": info,
        "upstream": ctx.notes.get("upstream", "not started"),
        "setup_seconds": measure_start - started,
        "measure_seconds": time.perf_counter() - measure_start,
        "scenarios": [dataclasses.asdict(r) for r in results],
    }


def _run_one(ctx: RunContext, name: str, title: str, runner: Any) -> ScenarioResult:
    result = ScenarioResult(name, title)
    t0 = time.perf_counter()
    ctx.log(f"=== {name}: {title}")
    try:
        runner(ctx, result)
    except NotAvailable as exc:
        result.status, result.reason = "not run", str(exc)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        ctx.log(traceback.format_exc())
        result.status, result.reason = "not run", f"harness error: {type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - t0
    ctx.log(
        f"=== {name}: {result.status}{' (' + result.reason + ')' if result.reason else ''} in {result.seconds:.1f} s"
    )
    return result


def save(data: dict[str, Any], complete: bool) -> Path:
    """Every run keeps its own file; ``latest.json`` (what --report-only renders) only for complete runs (an
    ``--only`` run is merged into it by ``merge_into_latest``)."""
    path = RESULTS_DIR / f"results-{data['started']}.json"
    text = json.dumps(data, indent=1, default=str)
    path.write_text(text)
    if complete:
        (RESULTS_DIR / "latest.json").write_text(text)
    return path


def merge_into_latest(data: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """Fold an ``--only`` run into ``latest.json``: its scenarios replace (or join, in report order) those of the
    last complete run, so BENCHMARKS.md keeps every scenario. (merged data or None, why not merged)."""
    path = RESULTS_DIR / "latest.json"
    if not path.exists():
        return None, "no bench/results/latest.json (no complete run yet)"
    latest: dict[str, Any] = json.loads(path.read_text())
    if latest["settings"]["quick"] != data["settings"]["quick"]:
        modes = {True: "quick", False: "full"}
        return (
            None,
            f"latest.json is a {modes[latest['settings']['quick']]} run, this one {modes[data['settings']['quick']]}",
        )
    separately = {
        "command": data["command"],
        "started_at": data["started_at"],
        "rounds": data["settings"]["rounds"],
        "load_average_at_start": data["machine"]["load_average_at_start"],
    }
    fresh = {s["name"]: {**s, "measured_separately": separately} for s in data["scenarios"]}
    order = list(registry())
    scenarios = [s for s in latest["scenarios"] if s["name"] not in fresh] + list(fresh.values())
    scenarios.sort(key=lambda s: order.index(s["name"]) if s["name"] in order else len(order))
    latest["scenarios"] = scenarios
    path.write_text(json.dumps(latest, indent=1, default=str))
    return latest, ""


def load_latest() -> dict[str, Any]:
    path = RESULTS_DIR / "latest.json"
    if not path.exists():
        sys.exit("no bench/results/latest.json yet: run `python -m bench --quick` first")
    data: dict[str, Any] = json.loads(path.read_text())
    return data
