"""``python -m llmplex.emulator`` / ``llmplex-emulator``: serve the emulator on uvicorn (uvloop + httptools).

Prints ``LLMPLEX_EMULATOR_READY http://127.0.0.1:<port>`` once listening (``--port 0`` picks a
free port). SIGTERM and SIGINT stop it cleanly (exit status 0).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from types import FrameType

import uvicorn

from llmplex.emulator.app import create_app
from llmplex.emulator.directives import Settings

__all__ = ["main"]

READY = "LLMPLEX_EMULATOR_READY"
_STARTUP_POLL_S = 0.005


def _parser() -> argparse.ArgumentParser:
    description = "Serve the llmplex provider emulator (OpenAI, Azure, Anthropic, Cohere v2 and Gemini wire formats)."
    parser = argparse.ArgumentParser(prog="llmplex-emulator", description=description)
    parser.add_argument("--version", action="version", version=f"llmplex-emulator {_version()}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=_bounded(0, 65535), default=9000, help="0 picks a free port (printed on the READY line)"
    )
    parser.add_argument(
        "--latency-ms", type=_bounded(0, 3_600_000), default=0, help="default delay before every answer"
    )
    parser.add_argument(
        "--chunks", type=_bounded(1, 100_000), default=5, help="default number of content chunks per stream"
    )
    parser.add_argument(
        "--chunk-delay-ms", type=_bounded(0, 3_600_000), default=0, help="default pause between stream chunks"
    )
    parser.add_argument(
        "--keep-alive",
        type=_bounded(1, 86_400),
        default=5,
        help="seconds an idle keep-alive connection stays open (uvicorn's default: 5)",
    )
    return parser


def _version() -> str:
    # the installed distribution's version: the emulator imports nothing from llmplex
    try:
        return importlib.metadata.version("llmplex")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


async def _serve(server: uvicorn.Server, sock: socket.socket) -> int:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():  # startup failed; uvicorn has logged why
            return 1
        await asyncio.sleep(_STARTUP_POLL_S)
    sys.stdout.write(f"{READY} {_url(sock)}\n")
    sys.stdout.flush()
    await task
    return 0


def _bounded(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in ``[low, high]``, else a clear usage error (not a traceback)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings(latency_ms=args.latency_ms, chunks=args.chunks, chunk_delay_ms=args.chunk_delay_ms)
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        sys.stderr.write(f"llmplex-emulator: cannot listen on {args.host}:{args.port}: {exc}\n")
        return 2
    config = uvicorn.Config(
        create_app(settings),
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=args.keep_alive,
        timeout_graceful_shutdown=0.5,  # type: ignore[arg-type]  # stalled streams never finish on their own
    )
    server = uvicorn.Server(config)
    # modules and the app live as long as the process: keep full collections from rescanning them, and
    # run them rarely (a 500-stream load makes each one a pause of tens of milliseconds; an upstream
    # pause would show up as a stall in whatever is measured against it)
    gc.collect()
    gc.freeze()
    gc.set_threshold(700, 10, 1000)

    def stop(signum: int, frame: FrameType | None) -> None:
        # uvicorn swaps in its own handlers while serving and re-raises the signal afterwards;
        # landing here then (or before it started) just means "exit", with status 0
        server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    with sock, asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        return runner.run(_serve(server, sock))


if __name__ == "__main__":
    sys.exit(main())
