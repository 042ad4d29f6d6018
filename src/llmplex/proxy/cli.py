"""``llmplex --config config.yaml``: serve the proxy with uvicorn (httptools, and uvloop when installed).

Also ``llmplex --model NAME`` (one model, no config) and ``llmplex --demo`` (offline demo on the
emulator). A broken config exits with status 2 and a message naming the place in the file.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

import uvicorn

import llmplex
from llmplex.config_source import parse_yaml
from llmplex.exceptions import ConfigError
from llmplex.proxy import demo
from llmplex.proxy.access_log import log_config
from llmplex.proxy.cli_args import REFUSED_SERVERS, build_parser
from llmplex.proxy.cli_probe import proxy_url, run_health, run_test
from llmplex.proxy.config import ProxyConfig, load_config, single_model_config
from llmplex.proxy.protocol import BoundedHttpToolsProtocol, ServerConfig
from llmplex.proxy.tls import check_tls

__all__ = ["main"]

_EXIT_CONFIG = 2
_EXIT_USAGE = 2
DEBUG_ENV = "LLMPLEX_DEBUG"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.version:
        sys.stdout.write(f"llmplex {llmplex.__version__}\n")
        return 0
    for flag, server in REFUSED_SERVERS.items():
        if getattr(args, flag):
            _say(
                f"error: --{flag}: llmplex does not run under {server}; it serves with uvicorn. "
                "Use --num_workers N for N worker processes (with Redis in router_settings to share limits)."
            )
            return _EXIT_USAGE
    _configure_logging(args)
    environ = dict(os.environ)
    if args.health or args.test is not None:
        return _probe(args, environ)
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into an exception so the
    # cleanup below (stopping the demo emulator) runs and the exit status is 0
    signal.signal(signal.SIGTERM, _terminate)
    emulator = None
    try:
        tls = check_tls(args.ssl_keyfile_path, args.ssl_certfile_path)
        path = str(demo.demo_config_path()) if args.demo else (None if args.model else args.config)
        if path and _wants_emulator(path) and demo.EMULATOR_ENV not in environ:
            emulator, entries = demo.start_emulator()
            environ.update(entries)
            _say(f"started the emulator at {entries[demo.EMULATOR_ENV]}")
        config = _load(args, path, environ)
        # a config that runs on the emulator (the demos) has nothing to guard: it binds loopback by default
        local = args.demo or config.start_emulator
        host = args.host or os.environ.get("HOST") or ("127.0.0.1" if local else "0.0.0.0")
        for warning in config.warnings:  # first: they may explain a refusal below
            _say(f"warning: {warning}")
        _check_auth(config, host, args.allow_unauthenticated)
        _serve(args, config, host, environ, tls)
    except ConfigError as exc:
        _say(f"error: {exc}")
        return _EXIT_CONFIG
    except KeyboardInterrupt:
        pass
    finally:
        if emulator is not None:
            demo.stop(emulator)
    return 0


def _configure_logging(args: argparse.Namespace) -> None:
    level = "DEBUG" if args.detailed_debug else args.log_level.upper()
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.debug or args.detailed_debug:
        # per-request routing lines (llmplex.router / llmplex.proxy at debug level); workers read the variable
        os.environ[DEBUG_ENV] = "1"
    if os.environ.get(DEBUG_ENV):
        logging.getLogger("llmplex").setLevel(logging.DEBUG)
    if args.detailed_debug:
        args.log_level = "debug"


def _probe(args: argparse.Namespace, environ: dict[str, str]) -> int:
    tls = bool(args.ssl_certfile_path)
    if isinstance(args.test, str):
        return run_test(args.test.rstrip("/"), args.model, environ)
    base = proxy_url(args.host or environ.get("HOST"), args.port, tls)
    if args.health:
        return run_health(base, environ)
    return run_test(base, args.model, environ)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _load(args: argparse.Namespace, path: str | None, environ: dict[str, str]) -> ProxyConfig:
    if path:
        return load_config(path, environ=environ)
    if args.model:
        params = {
            "api_base": args.api_base,
            "api_version": args.api_version,
            "temperature": args.temperature,
            "max_tokens": args.max_tokens,
        }
        spec = {
            "alias": args.alias,
            "params": {k: v for k, v in params.items() if v is not None},
            "drop_params": args.drop_params,
        }
        args.model_spec = {"model": args.model, **spec}  # what worker processes rebuild the config from
        return single_model_config(args.model, environ=environ, **spec)
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


def _serve(
    args: argparse.Namespace, config: ProxyConfig, host: str, environ: dict[str, str], tls: dict[str, str]
) -> None:
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
        **tls,
    }
    sock = _bind(host, args.port)
    port = sock.getsockname()[1]
    where = f"{'https' if tls else 'http'}://{_url_host(host)}:{port}"
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
        os.environ[MODEL_ENV] = json.dumps(args.model_spec)
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
