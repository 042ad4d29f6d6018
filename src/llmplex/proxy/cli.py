"""``llmplex --config config.yaml``: serve the proxy with uvicorn (uvloop + httptools when installed).

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
from collections.abc import Sequence
from types import FrameType
from typing import Any

from llmplex.config_source import parse_yaml
from llmplex.exceptions import ConfigError
from llmplex.proxy import demo
from llmplex.proxy.access_log import log_config
from llmplex.proxy.config import ProxyConfig, load_config, single_model_config

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
        "--allow-unauthenticated", action="store_true", help="serve a non-loopback address without a master key"
    )
    return parser


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
    import uvicorn

    from llmplex.proxy.app import CONFIG_ENV, MODEL_ENV, create_app, freeze_startup_objects

    options: dict[str, Any] = {
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
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
        server = uvicorn.Server(uvicorn.Config(create_app(config), host=host, port=port, **options))
        freeze_startup_objects()
        _say(f"serving {', '.join(config.model_names())} on {where}")
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
    uv_config = uvicorn.Config(factory, factory=True, host=host, port=port, workers=args.num_workers, **options)
    _say(f"serving {', '.join(config.model_names())} on {where} with {args.num_workers} workers")
    Multiprocess(uv_config, sockets=[sock]).run()


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
