"""``python -m bench.ab --base REV``: proxy throughput of this tree against an earlier commit, alternating in one run.

The issues ask for "throughput after the change >= 0.95 x (or 0.97 x) the previous commit, alternating A/B in one
run". Absolute numbers drift by up to +-30 % on this 2-core machine within minutes, so both proxies run side by
side: the same emulator upstream (core 0), the same generated config, each proxy pinned to core 1, and wrk rounds
that alternate A, B, B, A, ... so that a slow minute falls on both. ``REV`` is checked out into a temporary git
worktree (removed afterwards) and run from its own ``src/`` with this venv's packages.

Prints one line per round and the median ratio (this tree / base) for non-streaming and streaming requests.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.context import REPO, RESULTS_DIR, SUT_CORE, RunContext, Settings
from bench.procs import ProcessRegistry, wait_for_http
from bench.proxies import MASTER_KEY, chat_body, free_port, write_config
from bench.wrk import run_wrk


def _start_proxy(ctx: RunContext, label: str, tree: Path, upstream_base: str) -> str:
    port = free_port()
    code = "import sys; from llmplex.proxy.cli import main; sys.exit(main())"
    config = write_config(f"ab-{label}", upstream_base)
    argv = [ctx.python, "-c", code, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    env = ctx.child_env(PYTHONPATH=str(tree / "src"))
    proc = ctx.registry.start(f"proxy-ab-{label}", argv, env=env, core=SUT_CORE, cwd=tree)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(proc, url + "/health/liveliness", timeout=60, headers={"Authorization": f"Bearer {MASTER_KEY}"})
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--base", required=True, help="the commit to compare against (e.g. HEAD~3, a hash)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per side and kind (default 6)")
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk seconds per round (default 5)")
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args(argv)

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="ab-logs-", dir=RESULTS_DIR))
    ctx = RunContext(Settings.for_mode(True, 1), ProcessRegistry(log_dir), log_dir / "ab.log")
    wrk = ctx.wrk()
    if wrk is None:
        print("wrk is needed (apt-get install wrk)", file=sys.stderr)
        return 2
    base_tree = Path(tempfile.mkdtemp(prefix="ab-base-"))
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(base_tree), args.base], check=True)
    try:
        upstream = ctx.upstream()
        urls = {
            "new": _start_proxy(ctx, "new", REPO, upstream.openai_base),
            "base": _start_proxy(ctx, "base", base_tree, upstream.openai_base),
        }
        results: dict[tuple[str, str], list[float]] = {}
        for kind, stream in (("non-streaming", False), ("streaming", True)):
            body = chat_body(stream=stream)
            for url in urls.values():  # warm-up: open upstream connections, fill caches
                run_wrk(wrk, url + "/v1/chat/completions", body, MASTER_KEY, connections=args.connections, seconds=2)
            for i in range(args.rounds):
                order = ("new", "base") if i % 2 == 0 else ("base", "new")
                for name in order:
                    out = run_wrk(
                        wrk,
                        urls[name] + "/v1/chat/completions",
                        body,
                        MASTER_KEY,
                        connections=args.connections,
                        seconds=args.seconds,
                    )
                    rps = float(out.get("rps", 0.0)) if not out.get("errors") else 0.0
                    results.setdefault((kind, name), []).append(rps)
                    print(
                        f"{kind:14s} round {i + 1} {name:4s} {rps:8.0f} req/s  errors={out.get('errors')}", flush=True
                    )
                    time.sleep(0.5)
        print()
        for kind in ("non-streaming", "streaming"):
            new, base = results[(kind, "new")], results[(kind, "base")]
            ratios = [n / b for n, b in zip(new, base, strict=True) if b]
            print(
                f"{kind}: this tree {statistics.median(new):.0f} req/s, base {args.base} {statistics.median(base):.0f}"
                f" req/s; ratio per round pair median {statistics.median(ratios):.3f}"
                f" ({min(ratios):.3f}..{max(ratios):.3f})"
            )
    finally:
        ctx.stop()
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base_tree)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
