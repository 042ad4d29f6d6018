"""The ``llmplex`` command line: LiteLLM's proxy flags (same names, same environment variables) plus llmplex's own.

Environment variables as LiteLLM reads them: ``PORT``, ``HOST``, ``NUM_WORKERS``, ``CONFIG_FILE_PATH``,
``KEEPALIVE_TIMEOUT``. Flags LiteLLM has for servers llmplex does not run under (gunicorn, hypercorn,
granian) are accepted only to be refused with a sentence saying what to use.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping

from llmplex.proxy.protocol import DEFAULT_HEADER_TIMEOUT, DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_MAX_HEADER_BYTES

__all__ = ["REFUSED_SERVERS", "build_parser"]

# LiteLLM's server switches llmplex does not offer, and what to use instead
REFUSED_SERVERS = {
    "run_gunicorn": "gunicorn",
    "run_hypercorn": "hypercorn",
    "run_granian": "granian",
}


def _int_env(environ: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"llmplex: error: {name} must be an integer, got {raw[:40]!r}") from None


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
        return value

    return parse


def _env_number(environ: Mapping[str, str], name: str, default: float, kind: type[int] | type[float]) -> float:
    text = environ.get(name)
    if not text:
        return default
    try:
        return _positive(kind)(text)
    except argparse.ArgumentTypeError as exc:
        raise SystemExit(f"llmplex: error: {name}: {exc}") from None


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="llmplex", description="OpenAI-compatible LLM proxy (LiteLLM config format)")
    parser.add_argument("--version", "-v", action="store_true", help="print llmplex's version and exit")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--config", "-c", default=env.get("CONFIG_FILE_PATH") or None, help="LiteLLM-format config.yaml"
    )
    source.add_argument("--model", "-m", help="serve one model without a config (every request goes to it)")
    source.add_argument("--demo", action="store_true", help="offline demo: emulated providers, no API key needed")
    one = parser.add_argument_group("with --model (as LiteLLM's proxy)")
    one.add_argument("--api_base", "--api-base", dest="api_base", help="the model's API base URL")
    one.add_argument("--api_version", "--api-version", dest="api_version", help="API version (Azure)")
    one.add_argument("--alias", help="the name clients see in /v1/models (default: the model)")
    one.add_argument("--temperature", type=float, help="default temperature for requests that set none")
    one.add_argument("--max_tokens", "--max-tokens", type=int, dest="max_tokens", help="default max_tokens")
    one.add_argument("--drop_params", "--drop-params", action="store_true", dest="drop_params", help="drop unmapped")
    parser.add_argument("--host", default=None, help="bind address (HOST; default 0.0.0.0, 127.0.0.1 for demos)")
    parser.add_argument("--port", type=int, default=_int_env(env, "PORT", 4000), help="port (PORT; default 4000)")
    parser.add_argument(
        "--num_workers", "--num-workers", type=int, default=_int_env(env, "NUM_WORKERS", 1), dest="num_workers"
    )
    parser.add_argument(
        "--keepalive_timeout",
        "--keepalive-timeout",
        type=_positive(int),
        default=_env_number(env, "KEEPALIVE_TIMEOUT", DEFAULT_KEEPALIVE_TIMEOUT, int),
        dest="keepalive_timeout",
        help=f"seconds an idle connection stays open (KEEPALIVE_TIMEOUT; default {DEFAULT_KEEPALIVE_TIMEOUT})",
    )
    parser.add_argument(
        "--header_timeout",
        "--header-timeout",
        type=_positive(float),
        default=DEFAULT_HEADER_TIMEOUT,
        dest="header_timeout",
        help="seconds a connection may take to send a request's headers; slower ones are closed "
        f"(default {DEFAULT_HEADER_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max_header_bytes",
        "--max-header-bytes",
        type=_positive(int),
        default=DEFAULT_MAX_HEADER_BYTES,
        dest="max_header_bytes",
        help=f"largest request head (request line and headers) accepted, bytes (default {DEFAULT_MAX_HEADER_BYTES})",
    )
    parser.add_argument("--ssl_keyfile_path", "--ssl-keyfile-path", dest="ssl_keyfile_path", help="TLS private key")
    parser.add_argument("--ssl_certfile_path", "--ssl-certfile-path", dest="ssl_certfile_path", help="TLS certificate")
    parser.add_argument(
        "--log-level",
        "--log_level",
        default="warning",
        dest="log_level",
        choices=["critical", "error", "warning", "info", "debug"],
    )
    parser.add_argument(
        "--debug", action="store_true", help="one log line per routing decision (group, deployment, retries, timings)"
    )
    parser.add_argument(
        "--detailed_debug", "--detailed-debug", action="store_true", dest="detailed_debug", help="--debug plus uvicorn"
    )
    parser.add_argument(
        "--telemetry", nargs="?", const=True, type=_flag, help="accepted for LiteLLM compatibility; does nothing"
    )
    parser.add_argument(
        "--access-log", action="store_true", help="one JSON line per request on stderr (off by default: it costs)"
    )
    parser.add_argument(
        "--graceful-timeout",
        "--graceful_timeout",
        type=float,
        default=30.0,
        dest="graceful_timeout",
        help="on SIGTERM, seconds to let in-flight requests and streams finish (default 30)",
    )
    parser.add_argument(
        "--allow-unauthenticated", action="store_true", help="serve a non-loopback address without a master key"
    )
    probe = parser.add_argument_group("calling a running proxy (as LiteLLM's --health and --test)")
    probe.add_argument("--health", action="store_true", help="GET /health of the proxy at --host/--port and print it")
    probe.add_argument(
        "--test",
        nargs="?",
        const=True,
        default=None,
        metavar="URL",
        help="send a test chat completion (then a streamed one) to the proxy at URL or --host/--port",
    )
    for flag in REFUSED_SERVERS:
        parser.add_argument(f"--{flag}", action="store_true", help=argparse.SUPPRESS)
    return parser
