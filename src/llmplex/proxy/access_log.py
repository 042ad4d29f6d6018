"""Per-request bookkeeping: ``x-request-id``, in-flight gauge, metrics and one JSON access-log line.

``ObservabilityMiddleware`` puts a ``RequestRecord`` in the ASGI scope; handlers fill in what they
learn (model, winner, usage, errors) and the middleware reports it once the response is fully sent,
so a stream is counted when it ends, not when its headers go out. The log line never holds message
content or keys; tokens and cost are read only when the access logger is enabled (cost is computed
lazily by the response itself).
"""

from __future__ import annotations

import copy
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmplex import ModelResponse
from llmplex.proxy.errors import ProxyError, error_origin, error_response
from llmplex.proxy.metrics import ProxyMetrics
from llmplex.relayed import RelayedResponse

__all__ = ["ACCESS_LOGGER", "MAX_HEADER_BYTES", "ObservabilityMiddleware", "RequestRecord", "log_config", "record_of"]

ACCESS_LOGGER = "llmplex.proxy.access"
_SCOPE_KEY = "llmplex.record"
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
_CLIENT_CLOSED = 499  # nginx's "client closed request": the client left before an answer started
_LOGGED_MODELS = 8  # a request may name many models; the log line stays short
_MAX_NAME = 100
MAX_HEADER_BYTES = 32 * 1024  # all request headers together; real clients send well under 4 KiB

logger = logging.getLogger(ACCESS_LOGGER)


class DirectResponse(Protocol):
    """What the hot path's handler returns: a Starlette ``Response`` or the proxy's event stream."""

    status_code: int
    raw_headers: list[tuple[bytes, bytes]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


Handler = Callable[[Request], Awaitable[DirectResponse]]


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    method: str
    route: str
    started: float = field(default_factory=time.perf_counter)
    model: str = "-"  # metrics label: a configured model name, "unknown" or "multi"
    models: list[str] = field(default_factory=list)  # the names the client sent (log only)
    stream: bool = False
    winner: str | None = None
    raced: bool = False
    deployment: str | None = None
    status: int = 0
    ttft: float | None = None
    error: str | None = None
    upstream_errors: list[tuple[str, str]] = field(default_factory=list)  # (model, error class)
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (model, origin, error class), for metrics
    race_cancelled: list[str] = field(default_factory=list)
    hedges: list[str] = field(default_factory=list)
    response: ModelResponse | RelayedResponse | None = None
    usage: dict[str, int] | None = None
    done: Callable[[RequestRecord], None] | None = None  # called once the response is over (virtual-key spend)

    def first_token(self) -> None:
        if self.ttft is None:
            self.ttft = time.perf_counter() - self.started

    def upstream_failed(self, model: str, exc: BaseException) -> None:
        """A model call failed: counted by origin; an upstream's failure also as an upstream error."""
        origin = error_origin(exc)
        self.errors.append((model, origin, type(exc).__name__))
        if origin == "upstream":
            self.upstream_errors.append((model, type(exc).__name__))

    def failed(self, exc: BaseException) -> None:
        """The request failed outside any model call (refused input, auth, a bug)."""
        self.errors.append((self.model, error_origin(exc), type(exc).__name__))


def record_of(request: Request) -> RequestRecord | None:
    record: RequestRecord | None = request.scope.get(_SCOPE_KEY)
    return record


class ObservabilityMiddleware:
    """Adds ``x-request-id`` (the client's when sane), counts the request and logs it when it is done."""

    def __init__(self, app: ASGIApp, metrics: ProxyMetrics, routes: Collection[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = frozenset(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if sum(len(name) + len(value) for name, value in scope["headers"]) > MAX_HEADER_BYTES:
            response = error_response(
                ProxyError(431, f"Request headers too large: the limit is {MAX_HEADER_BYTES} bytes in total")
            )
            await response(scope, receive, send)
            return
        record = RequestRecord(_request_id(scope), scope["method"], path if path in self.routes else "other")
        scope[_SCOPE_KEY] = record
        header = (b"x-request-id", record.request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        self.metrics.requests_in_flight += 1
        try:
            await self.app(scope, receive, send_with_id)
        except BaseException as exc:
            record.status = record.status or 500
            if isinstance(exc, Exception):
                record.failed(exc)
            raise
        finally:
            self.metrics.requests_in_flight -= 1
            record.status = record.status or _CLIENT_CLOSED
            self._report(record)

    async def serve(self, scope: Scope, receive: Receive, send: Send, handler: Handler) -> None:
        """The hot path: the same bookkeeping as ``__call__`` for a handler returning a response object.

        The request id goes straight into the response's headers and the status is read from it,
        so no ``send`` wrapper sits between the server and every message.
        """
        if sum(len(name) + len(value) for name, value in scope["headers"]) > MAX_HEADER_BYTES:
            await self(scope, receive, send)  # the general path answers 431
            return
        record = RequestRecord(_request_id(scope), scope["method"], scope["path"])
        scope[_SCOPE_KEY] = record
        self.metrics.requests_in_flight += 1
        try:
            response = await handler(Request(scope, receive))
            response.raw_headers.append((b"x-request-id", record.request_id.encode()))
            record.status = response.status_code
            await response(scope, receive, send)
        except BaseException:
            record.status = record.status or 500
            raise
        finally:
            self.metrics.requests_in_flight -= 1
            record.status = record.status or _CLIENT_CLOSED
            self._report(record)

    def _report(self, record: RequestRecord) -> None:
        elapsed = time.perf_counter() - record.started
        if record.done is not None:
            try:
                record.done(record)
            except Exception:  # bookkeeping never breaks the server
                logger.exception("request bookkeeping failed")
        metrics, model = self.metrics, record.model
        metrics.child(metrics.requests, record.route, model, str(record.status)).inc()
        metrics.child(metrics.latency, record.route, model).observe(elapsed)
        if record.ttft is not None:
            metrics.child(metrics.ttft, model).observe(record.ttft)
        for name, error in record.upstream_errors:
            metrics.child(metrics.upstream_errors, name, error).inc()
        for name, origin, error in record.errors:
            metrics.child(metrics.errors, name, origin, error).inc()
        if record.raced and record.winner is not None:
            metrics.child(metrics.race_wins, record.winner).inc()
        for name in record.race_cancelled:
            metrics.child(metrics.race_cancelled, name).inc()
        for name in record.hedges:
            metrics.child(metrics.hedges, name).inc()
        if logger.isEnabledFor(logging.INFO):
            logger.info(orjson.dumps(_line(record, elapsed)).decode())


def log_config(access_log: bool) -> dict[str, Any]:
    """uvicorn's logging config plus the access logger: JSON lines on stdout when enabled, else silent.

    Given to uvicorn (not applied here) so every worker process configures itself the same way.
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["llmplex_json"] = {"format": "%(message)s"}
    config["handlers"]["llmplex_access"] = {
        "formatter": "llmplex_json",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    config["loggers"][ACCESS_LOGGER] = {
        "handlers": ["llmplex_access"],
        "level": "INFO" if access_log else "WARNING",
        "propagate": False,
    }
    return config


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _REQUEST_ID.match(value):
            return str(value.decode())
    return f"{random.getrandbits(96):024x}"  # an id, not a secret: no system call per request


def _line(record: RequestRecord, elapsed: float) -> dict[str, Any]:
    line: dict[str, Any] = {
        "ts": round(time.time(), 3),
        "request_id": record.request_id,
        "method": record.method,
        "route": record.route,
        "status": record.status,
        "latency_ms": round(elapsed * 1000.0, 3),
    }
    if record.models:
        line["models"] = [m[:_MAX_NAME] for m in record.models[:_LOGGED_MODELS]]
        line["stream"] = record.stream
    optional = {
        "winner": record.winner,
        "deployment": record.deployment,
        "ttft_ms": None if record.ttft is None else round(record.ttft * 1000.0, 3),
        "error": record.error,
        "upstream_errors": [f"{m}:{e}" for m, e in record.upstream_errors] or None,
        "race_cancelled": record.race_cancelled or None,
    }
    line.update({k: v for k, v in optional.items() if v is not None})
    usage = _usage(record)
    if usage:
        line.update(usage)
    cost = _cost(record.response)
    if cost is not None:
        line["cost"] = cost
    return line


def _usage(record: RequestRecord) -> dict[str, int] | None:
    if record.usage is not None:
        return record.usage
    response = record.response
    if isinstance(response, RelayedResponse):  # its counts without validating it
        return response.usage_counts()
    usage = response.usage if response is not None else None
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _cost(response: ModelResponse | RelayedResponse | None) -> float | None:
    if response is None:
        return None
    try:  # computed on first access, so only when a log line is actually written
        cost = response.hidden_params.get("response_cost")
    except Exception:  # a pricing problem must never fail the request that already succeeded
        return None
    return None if cost is None else float(cost)
