"""LiteLLM's ``x-litellm-*`` headers: the request headers the proxy reads and the response headers it sends.

Request: ``x-litellm-timeout`` (seconds, the upstream timeout of each attempt, as the body's
``timeout``), ``x-litellm-num-retries`` (as the body's ``num_retries``) and ``x-litellm-call-id``
(the id echoed back; a fresh UUID otherwise). Response, beside ``x-llmplex-*``: which deployment
answered (``x-litellm-model-id``, ``x-litellm-model-api-base`` without query or userinfo,
``x-litellm-model-group``: the group that answered, after fallbacks), ``x-litellm-response-cost``
(USD; whole answers only, a stream's cost is not known when its headers leave),
``x-litellm-attempted-retries`` (retries inside the group that answered),
``x-litellm-attempted-fallbacks`` (fallback groups tried before it), ``x-litellm-max-retries``,
``x-litellm-timeout`` (the upstream timeout that applied) and ``x-litellm-call-id``.
The per-deployment and per-attempt-count parts are encoded once per combination (the proxy's
hot path); only the call id and the cost are formatted per request.
"""

from __future__ import annotations

import functools
import itertools
import os
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from llmplex._redact import display_url
from llmplex.proxy.errors import ProxyError
from llmplex.proxy.params import MAX_TIMEOUT
from llmplex.router.deployments import Deployment

__all__ = ["RequestHeaders", "call_id_header", "effective_timeout", "litellm_route_headers", "read_request_headers"]

_PREFIX = b"x-litellm-"
MAX_CALL_ID = 128  # a client's call id longer than this is replaced by a fresh one


class RequestHeaders:
    """The ``x-litellm-*`` request headers the proxy understands (raw values, checked by ``apply``)."""

    __slots__ = ("call_id", "num_retries", "timeout")

    def __init__(self) -> None:
        self.timeout: bytes | None = None
        self.num_retries: bytes | None = None
        self.call_id: bytes | None = None

    def apply(self, options: dict[str, Any]) -> None:
        """Set ``timeout`` / ``num_retries`` from the headers (they win over the body, as in LiteLLM)."""
        if self.timeout is not None:
            options["timeout"] = _number(self.timeout, "x-litellm-timeout", 1.0, MAX_TIMEOUT)
        if self.num_retries is not None:
            options["num_retries"] = int(_number(self.num_retries, "x-litellm-num-retries", 0, 10, integer=True))


def read_request_headers(raw: Iterable[tuple[bytes, bytes]]) -> RequestHeaders | None:
    """The request's ``x-litellm-*`` headers, or None when it has none (one pass over the raw headers)."""
    found: RequestHeaders | None = None
    for name, value in raw:
        if name.startswith(_PREFIX):
            suffix = name[len(_PREFIX) :]
            if suffix in (b"timeout", b"num-retries", b"call-id"):
                found = found or RequestHeaders()
                setattr(found, suffix.decode().replace("-", "_"), value)
    return found


def call_id_header(given: bytes | None) -> tuple[bytes, bytes]:
    """``x-litellm-call-id``: the client's own id when it sent a sane one, else a fresh UUID4-shaped id."""
    if given is not None and 0 < len(given) <= MAX_CALL_ID and all(32 < c < 127 for c in given):
        return (b"x-litellm-call-id", given)
    return (b"x-litellm-call-id", _ids.next())


class _CallIds:
    """UUID4-shaped ids: 74 random bits per process, then a 48-bit counter (a ``uuid4()`` per request costs
    ~6 us; this ~0.3 us). Unique within the process and, with overwhelming odds, across workers and restarts."""

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        h = uuid.uuid4().hex
        self._prefix = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-".encode()
        self._counter = itertools.count(int(h[20:], 16) & 0xFFFFFF)

    def next(self) -> bytes:
        return self._prefix + b"%012x" % (next(self._counter) & 0xFFFFFFFFFFFF)


_ids = _CallIds()
# a forked worker must not repeat its parent's ids (reseeded at the fork, not checked with getpid() per id)
os.register_at_fork(after_in_child=_ids.reseed)


@functools.lru_cache(maxsize=4096)  # configured deployments x small attempt counts x a few timeouts
def litellm_route_headers(
    model_id: str,
    api_base: str | None,
    group: str,
    retries: int,
    fallbacks: int,
    max_retries: int,
    timeout: float | None,
) -> tuple[tuple[bytes, bytes], ...]:
    """Which deployment and group answered, after how many attempts, under which timeout: encoded once."""
    headers = [(b"x-litellm-model-id", _latin1(model_id)), (b"x-litellm-model-group", _latin1(group))]
    if api_base:
        headers.append((b"x-litellm-model-api-base", _latin1(display_url(api_base))))
    headers += [
        (b"x-litellm-attempted-retries", str(retries).encode()),
        (b"x-litellm-attempted-fallbacks", str(fallbacks).encode()),
        (b"x-litellm-max-retries", str(max_retries).encode()),
    ]
    if timeout is not None:
        headers.append((b"x-litellm-timeout", f"{timeout:g}".encode()))
    return tuple(headers)


def effective_timeout(options: Mapping[str, Any], deployment: Deployment, default: float) -> float:
    """The upstream timeout that applied to the call: the request's, else the deployment's, else the client's."""
    if "timeout" in options or "request_timeout" in options:
        value = _timeout_in(options)
        if value is not None:
            return value
    value = _timeout_in(deployment.params)
    return default if value is None else value


def _timeout_in(source: Mapping[str, Any]) -> float | None:
    for key in ("timeout", "request_timeout"):
        value = source.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _latin1(value: str) -> bytes:
    # header values must be latin-1 and single-line; model names are user-chosen
    return value.encode("latin-1", "replace").replace(b"\r", b" ").replace(b"\n", b" ")


def _number(raw: bytes, name: str, low: float, high: float, *, integer: bool = False) -> float:
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise ProxyError(400, f"header {name} must be {kind} from {low:g} to {high:g}", param=name)
    return value
