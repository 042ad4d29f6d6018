"""The proxies under test: llmplex, LiteLLM (defaults, and its documented faster settings), the bare floor.

Each is started once per run on the system-under-test core, with the same generated config (LiteLLM's
YAML format, written as JSON, which YAML parsers read), and reused by the proxy scenarios. Startup time
(process start to a 200 from the health route) and idle RSS are recorded at start.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.context import REPO, RESULTS_DIR, SUT_CORE, NotAvailable, RunContext
from bench.procs import ALL_CORES, Proc, StartError, wait_for_http

MASTER_KEY = "sk-" + secrets.token_hex(32)
MODEL = "bench"  # emulator, 0 ms
SLOW_STREAM_MODEL = "bench-chunks-40-chunkdelay-50"  # 40 chunks, one every 50 ms: 2 s per stream
LABELS = {
    "floor": "bare Starlette + aiohttp (floor)",
    "llmplex": "llmplex",
    "litellm": "LiteLLM 1.108.7 (defaults)",
    "litellm-tuned": "LiteLLM 1.108.7 (logging off)",
    "litellm-workers": "LiteLLM 1.108.7 (logging off, workers = cores, unpinned)",
    "direct": "direct to the emulator (no proxy)",
}
LITELLM_TUNED_SETTINGS: dict[str, Any] = {
    # not turn_off_message_logging: that is a privacy switch (it redacts), it adds work per request
    "litellm_settings": {"set_verbose": False},
    "general_settings": {"disable_spend_logs": True, "disable_error_logs": True},
}


@dataclass
class RunningProxy:
    name: str
    url: str
    proc: Proc
    startup_s: float
    idle_rss_mb: float
    served: int = 0

    @property
    def label(self) -> str:
        return LABELS[self.name]

    @property
    def chat_url(self) -> str:
        return self.url + "/v1/chat/completions"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(
    name: str, upstream_base: str, extra: dict[str, Any] | None = None, params: dict[str, Any] | None = None
) -> Path:
    """``extra``: sections merged into the config; ``params``: added to every deployment's litellm_params."""
    base = {"api_base": upstream_base, "api_key": "sk-bench", **(params or {})}
    models = [{"model_name": m, "litellm_params": {"model": f"openai/{m}", **base}} for m in (MODEL, SLOW_STREAM_MODEL)]
    config: dict[str, Any] = {"model_list": models, "general_settings": {"master_key": MASTER_KEY}}
    for section, values in (extra or {}).items():
        config.setdefault(section, {}).update(values)
    path = RESULTS_DIR / "configs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    return path


def _command(ctx: RunContext, name: str, port: int, upstream_base: str) -> tuple[list[str], dict[str, str], str]:
    """(argv, env, health path) for one proxy."""
    if name == "floor":
        argv = [
            ctx.python,
            str(REPO / "bench" / "floor_proxy.py"),
            "--upstream",
            upstream_base[: -len("/v1")],
            "--port",
            str(port),
        ]
        return argv, ctx.child_env(), "/health"
    if name == "llmplex":
        if not (REPO / "src" / "llmplex" / "proxy" / "cli.py").exists():
            raise NotAvailable("the llmplex proxy (llmplex.proxy.cli) is not available yet")
        code = "import sys; from llmplex.proxy.cli import main; sys.exit(main())"
        argv = [
            ctx.python,
            "-c",
            code,
            "--config",
            str(write_config(name, upstream_base)),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        return argv, ctx.child_env(), "/health/liveliness"
    litellm_bin = str(ctx.litellm_python().parent / "litellm")
    env = ctx.child_env(LITELLM_MASTER_KEY=MASTER_KEY, LITELLM_LOCAL_MODEL_COST_MAP="True")
    extra = None if name == "litellm" else LITELLM_TUNED_SETTINGS
    workers = str(os.cpu_count() or 1) if name == "litellm-workers" else "1"
    if name != "litellm":
        env["LITELLM_LOG"] = "ERROR"
    argv = [
        litellm_bin,
        "--config",
        str(write_config(name, upstream_base, extra)),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        workers,
    ]
    return argv, env, "/health/liveliness"


def get_proxy(ctx: RunContext, name: str) -> RunningProxy:
    """The running proxy ``name``, started on first use; NotAvailable (remembered) when it cannot start."""
    if name in ctx.proxy_failures:
        raise NotAvailable(ctx.proxy_failures[name])
    running = ctx.proxies.get(name)
    if running is not None and running.proc.alive():
        return running  # type: ignore[no-any-return]
    up = ctx.upstream()
    port = free_port()
    try:
        argv, env, health = _command(ctx, name, port, up.openai_base)
    except NotAvailable as exc:
        ctx.proxy_failures[name] = str(exc)
        raise
    core = ALL_CORES if name == "litellm-workers" else SUT_CORE
    proc = ctx.registry.start(f"proxy-{name}", argv, env=env, core=core, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        startup = wait_for_http(proc, url + health, timeout=120, headers={"Authorization": f"Bearer {MASTER_KEY}"})
    except StartError as exc:
        ctx.registry.stop(proc)
        ctx.proxy_failures[name] = f"{name} did not start: {exc}"
        raise NotAvailable(ctx.proxy_failures[name]) from exc
    time.sleep(1.0)  # let startup work settle before the idle RSS reading
    proxy = RunningProxy(name, url, proc, startup, proc.rss_mb())
    ctx.proxies[name] = proxy
    ctx.log(f"proxy {name} healthy after {startup:.2f} s, idle RSS {proxy.idle_rss_mb:.0f} MiB, at {url}")
    return proxy


def slow_stream_body() -> dict[str, Any]:
    """A stream of ``SLOW_STREAM_MODEL`` with its 40 chunks: the emulator splits its echo of the prompt into at
    most as many pieces as it has characters, and ``chat_body``'s prompt gives only 33."""
    body = chat_body(SLOW_STREAM_MODEL, stream=True)
    body["messages"][0]["content"] = "Say hello to the benchmark, forty chunks in all."
    return body


def chat_body(model: str = MODEL, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Say hello to the benchmark."}]}
    if stream:
        body["stream"] = True
    return body
