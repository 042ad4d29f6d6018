"""``llmplex --config config.yaml``: serve the proxy with uvicorn (httptools, and uvloop when installed).

Also ``llmplex --model NAME`` (one model, no config) and ``llmplex --demo`` (offline demo on the
emulator). A broken config exits with status 2 and a message naming the place in the file.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

import uvicorn

from llmplex.config_source import parse_yaml
from llmplex.exceptions import ConfigError
from llmplex.proxy import demo
from llmplex.proxy.access_log import log_config
from llmplex.proxy.config import ProxyConfig, load_config, single_model_config
from llmplex.proxy.protocol import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_HEADER_BYTES,
    BoundedHttpToolsProtocol,
    ServerConfig,
)

__all__ = ["main"]

_EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmplex", description="OpenAI-compatible LLM proxy (LiteLLM config format)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", "-c", help="LiteLLM-format config.yaml")
    source.add_argument("--model", help="serve one model without a config (every request goes to it)")
    source.add_argument("--demo", action="store_true", help="offline demo: emulated providers, no API key needed")
    parser.add_argument("--host", default=None, help="bind address (default 0.0.0.0; 127.0.0.1 for --demo)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "4000")), help="port (default 4000)")
    parser.add_argument("--num_workers", "--num-workers", type=int, default=1, dest="num_workers")
    parser.add_argument(
        "--log-level",
        "--log_level",
        default="warning",
        dest="log_level",
        choices=["critical", "error", "warning", "info", "debug"],
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
        "--keepalive_timeout",
        "--keepalive-timeout",
        type=_positive(int),
        default=_env_number("KEEPALIVE_TIMEOUT", DEFAULT_KEEPALIVE_TIMEOUT, int),
        dest="keepalive_timeout",
        help=f"seconds an idle kept-alive connection stays open (default {DEFAULT_KEEPALIVE_TIMEOUT})",
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
    parser.add_argument(
        "--allow-unauthenticated", action="store_true", help="serve a non-loopback address without a master key"
    )
    return parser


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


def _env_number(name: str, default: float, kind: type[int] | type[float]) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        return _positive(kind)(text)
    except argparse.ArgumentTypeError as exc:
        raise SystemExit(f"llmplex: error: {name}: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    environ = dict(os.environ)
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into an exception so the
    # cleanup below (stopping the demo emulator) runs and the exit status is 0
    signal.signal(signal.SIGTERM, _terminate)
    emulator = None
    try:
        path = str(demo.demo_config_path()) if args.demo else args.config
        if path and _wants_emulator(path) and demo.EMULATOR_ENV not in environ:
            emulator, entries = demo.start_emulator()
            environ.update(entries)
            _say(f"started the emulator at {entries[demo.EMULATOR_ENV]}")
        config = _load(args, path, environ)
        host = args.host or os.environ.get("HOST") or ("127.0.0.1" if args.demo else "0.0.0.0")
        _check_auth(config, host, args.allow_unauthenticated)
        for warning in config.warnings:
            _say(f"warning: {warning}")
        _serve(args, config, host, environ)
    except ConfigError as exc:
        _say(f"error: {exc}")
        return _EXIT_CONFIG
    except KeyboardInterrupt:
        pass
    finally:
        if emulator is not None:
            demo.stop(emulator)
    return 0


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _load(args: argparse.Namespace, path: str | None, environ: dict[str, str]) -> ProxyConfig:
    if path:
        return load_config(path, environ=environ)
    if args.model:
        return single_model_config(args.model, environ=environ)
    raise ConfigError("nothing to serve: pass --config config.yaml, --model NAME or --demo")


def _wants_emulator(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as file:
            data = parse_yaml(file.read(), path).data
    except (OSError, ConfigError):
        return False  # load_config reports the problem properly
    own = data.get("llmplex_settings") if isinstance(data, dict) else None
    return isinstance(own, dict) and own.get("start_emulator") is True


def _check_auth(config: ProxyConfig, host: str, allow_unauthenticated: bool) -> None:
    if config.master_key:
        return
    if not _is_loopback(host) and not allow_unauthenticated:
        raise ConfigError(
            f"refusing to serve {host} without authentication: set general_settings.master_key (or "
            "LITELLM_MASTER_KEY), bind to 127.0.0.1, or pass --allow-unauthenticated"
        )
    _say(f"authentication is OFF (no master key); anyone who can reach {host} can use the configured models")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(args: argparse.Namespace, config: ProxyConfig, host: str, environ: dict[str, str]) -> None:
    from llmplex.proxy.app import CONFIG_ENV, MODEL_ENV, create_app, freeze_startup_objects

    options: dict[str, Any] = {
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "http": BoundedHttpToolsProtocol,  # httptools (uvicorn[standard]) with bounds on request heads
        "ws": "none",  # no WebSocket route: nothing to upgrade to (and nothing to import at startup)
        "header_timeout": args.header_timeout,
        "max_header_bytes": args.max_header_bytes,
        "timeout_keep_alive": args.keepalive_timeout,
        "log_level": args.log_level,
        "log_config": log_config(args.access_log),
        "access_log": False,  # ours is structured (llmplex.proxy.access); uvicorn's would be a second line
        "lifespan": "on",
        "server_header": False,
        "timeout_graceful_shutdown": args.graceful_timeout,
    }
    sock = _bind(host, args.port)
    port = sock.getsockname()[1]
    where = f"http://{_url_host(host)}:{port}"
    if args.num_workers <= 1:
        server = _AnnouncingServer(
            ServerConfig(create_app(config), host=host, port=port, **options),
            f"serving {', '.join(config.model_names())} on {where}",
        )
        freeze_startup_objects()
        server.run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    if config.redis is None:
        _say(
            f"warning: no Redis configured (router_settings.redis_host / REDIS_HOST): rpm/tpm limits, cooldowns "
            f"and routing statistics are per worker, so {args.num_workers} workers allow up to "
            f"{args.num_workers}x each deployment's rpm/tpm"
        )
    # each worker process builds its own app (and aiohttp session) from the same source
    if config.source:
        os.environ[CONFIG_ENV] = config.source
    else:
        os.environ[MODEL_ENV] = config.default_model or ""
    for key in (demo.EMULATOR_ENV, demo.OPENAI_BASE_ENV):
        if key in environ:
            os.environ[key] = environ[key]
    factory = "llmplex.proxy.app:app_from_env"
    uv_config = ServerConfig(factory, factory=True, host=host, port=port, workers=args.num_workers, **options)
    _say(f"serving {', '.join(config.model_names())} on {where} with {args.num_workers} workers")
    Multiprocess(uv_config, sockets=[sock]).run()


class _AnnouncingServer(uvicorn.Server):
    """Says "serving ..." once the app has started (warmed up) and connections are accepted, not before."""

    def __init__(self, config: uvicorn.Config, announcement: str) -> None:
        super().__init__(config)
        self.announcement = announcement

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            from llmplex.proxy.app import freeze_startup_objects

            freeze_startup_objects()  # again: the warm-up imported the HTTP stack and the price table
            _say(self.announcement)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _say(message: str) -> None:
    sys.stderr.write(f"llmplex: {message}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
