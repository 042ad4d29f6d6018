"""``llmplex --health`` and ``llmplex --test``: call a proxy that is already running, as LiteLLM's CLI does.

Blocking stdlib HTTP on purpose: a one-shot command, no event loop, no extra dependency. The master key
comes from ``LITELLM_MASTER_KEY`` when set (LiteLLM's CLI sends none, so its checks fail on a proxy
with auth).
"""

from __future__ import annotations

import json
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

__all__ = ["proxy_url", "run_health", "run_test"]

_TIMEOUT = 120.0
_PROMPT = [{"role": "user", "content": "this is a test request, write a short poem"}]


def proxy_url(host: str | None, port: int, tls: bool) -> str:
    # a wildcard bind address is reachable on loopback
    target = "127.0.0.1" if host in (None, "", "0.0.0.0") else ("::1" if host == "::" else host)
    assert target is not None
    if ":" in target:
        target = f"[{target}]"
    return f"{'https' if tls else 'http'}://{target}:{port}"


def _headers(environ: Mapping[str, str]) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    key = environ.get("LITELLM_MASTER_KEY")
    if key:
        headers["authorization"] = f"Bearer {key}"
    return headers


def _call(url: str, environ: Mapping[str, str], body: Any = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    method = "GET" if data is None else "POST"
    request = urllib.request.Request(url, data=data, headers=_headers(environ), method=method)
    context = ssl.create_default_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT, context=context) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


def _show(payload: bytes) -> str:
    try:
        return json.dumps(json.loads(payload), indent=4)
    except ValueError:
        return payload.decode("utf-8", "replace")


def run_health(base: str, environ: Mapping[str, str]) -> int:
    """Print ``GET /health``; exit status 0 when every deployment is healthy."""
    _say(f"health-checking the models of the proxy at {base}")
    try:
        status, payload = _call(base + "/health", environ)
    except (urllib.error.URLError, OSError) as exc:
        _say(f"error: cannot reach the proxy at {base}: {getattr(exc, 'reason', exc)}")
        return 1
    sys.stdout.write(_show(payload) + "\n")
    if status != 200:
        return 1
    return 0 if json.loads(payload).get("unhealthy_count", 0) == 0 else 1


def run_test(base: str, model: str | None, environ: Mapping[str, str]) -> int:
    """One chat completion, then one streamed, to the proxy; print both."""
    name = model or "gpt-3.5-turbo"
    _say(f"making a test chat completion request to {base}, model={name}")
    try:
        status, payload = _call(base + "/chat/completions", environ, {"model": name, "messages": _PROMPT})
        sys.stdout.write(_show(payload) + "\n")
        if status != 200:
            return 1
        _say(f"making a streamed test request, model={name}")
        body = {"model": name, "messages": _PROMPT, "stream": True}
        status, payload = _call(base + "/chat/completions", environ, body)
        sys.stdout.write(payload.decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError) as exc:
        _say(f"error: cannot reach the proxy at {base}: {getattr(exc, 'reason', exc)}")
        return 1
    return 0 if status == 200 else 1


def _say(message: str) -> None:
    sys.stderr.write(f"llmplex: {message}\n")
    sys.stderr.flush()
