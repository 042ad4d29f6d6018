"""The proxy under a real uvicorn server on a free loopback port, in a background thread.

``proxy_factory(config)`` starts one server per call (a ``ProxyConfig``, a dict or YAML text) and
stops them all when the module's tests are done. Clients (the openai SDK, aiohttp) talk to ``.url``.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

from llmplex.proxy import ProxyConfig, create_app
from llmplex.proxy.protocol import BoundedHttpToolsProtocol, ServerConfig

START_TIMEOUT = 30.0  # a proxy with a database migrates it at startup: slow on a busy machine


class ProxyServer:
    """``server_options``: more ``ServerConfig`` settings (``header_timeout``, ``timeout_keep_alive``, ...)."""

    def __init__(self, config: ProxyConfig, **server_options: Any) -> None:
        self.config = config
        self.app = create_app(config)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.base = self.url + "/v1"
        uv_config = ServerConfig(  # as the CLI serves: httptools with the proxy's bounds on request heads
            self.app,
            host="127.0.0.1",
            port=self.port,
            loop="uvloop",
            http=BoundedHttpToolsProtocol,
            ws="none",
            lifespan="on",
            log_level="warning",
            access_log=False,
            **server_options,
        )
        self._server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self) -> ProxyServer:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("proxy server did not start: its startup failed (see the captured log)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"proxy server did not start within {START_TIMEOUT} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)  # the keys' spend flush and the batch executor's hand-back may take a few s
        self._sock.close()


def to_config(config: ProxyConfig | dict[str, Any] | str) -> ProxyConfig:
    if isinstance(config, ProxyConfig):
        return config
    if isinstance(config, str):
        return ProxyConfig.from_yaml(config, environ={})
    return ProxyConfig.from_dict(config, environ={})


def openai_model(name: str, model: str, api_base: str, **params: Any) -> dict[str, Any]:
    """A model_list entry served by an OpenAI-compatible upstream (the emulator)."""
    model_info = params.pop("model_info", None)
    entry: dict[str, Any] = {
        "model_name": name,
        "litellm_params": {"model": f"openai/{model}", "api_base": api_base, "api_key": "test-key", **params},
    }
    if model_info:
        entry["model_info"] = model_info
    return entry


@pytest.fixture(scope="module")
def proxy_factory() -> Iterator[Callable[[ProxyConfig | dict[str, Any] | str], ProxyServer]]:
    servers: list[ProxyServer] = []

    def start(config: ProxyConfig | dict[str, Any] | str) -> ProxyServer:
        server = ProxyServer(to_config(config)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def serving_url(line: str) -> str | None:
    """The address in the CLI's ``llmplex: serving ... on URL`` line, else None."""
    found = re.search(r"serving .* on (https?://\S+)", line)
    return found.group(1) if found else None
