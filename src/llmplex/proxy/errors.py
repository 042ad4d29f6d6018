"""Exceptions -> the OpenAI error shape ``{"error": {"message", "type", "param", "code"}}`` and a status.

Upstream status errors keep their status (429 keeps ``retry-after``); an ``AllModelsFailedError``
answers with its most meaningful member's status and lists every model's error; anything
unexpected is a 500 that says nothing about internals.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Literal

import orjson
from starlette.responses import Response

from llmplex.exceptions import (
    AllModelsFailedError,
    APIConnectionError,
    APIError,
    APIStatusError,
    BadRequestError,
    ConfigError,
    StreamError,
    Timeout,
    most_meaningful as _most_meaningful,
)

__all__ = [
    "ErrorOrigin",
    "ProxyError",
    "error_dict",
    "error_event",
    "error_origin",
    "error_response",
    "error_status",
    "slot_error",
]

logger = logging.getLogger("llmplex.proxy")


class ProxyError(Exception):
    """A request the proxy itself refuses (bad JSON, missing field, auth, size)."""

    def __init__(
        self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.retry_after: int | None = None  # seconds, sent as retry-after (the proxy's own 429s)


ErrorOrigin = Literal["client", "upstream", "internal"]


def error_origin(exc: BaseException) -> ErrorOrigin:
    """Whose failure ``exc`` is, for the metrics: the client's request (refused before any upstream call),
    the upstream's (its answer, the connection to it, no deployment available), or ours (a bug)."""
    if isinstance(exc, AllModelsFailedError):
        return error_origin(_most_meaningful(exc.exceptions))
    if isinstance(exc, ProxyError):
        return "client" if exc.status < 500 else "internal"
    if isinstance(exc, ConfigError):
        return "client"
    if isinstance(exc, (APIConnectionError, StreamError)):
        return "upstream"
    if isinstance(exc, APIStatusError):
        # an upstream's error carries its body or request id; the SDK's own 400s (unsupported parameter,
        # unknown model, a message it cannot translate) are raised before any call and carry neither
        local = exc.body is None and exc.request_id is None
        return "client" if local and isinstance(exc, BadRequestError) else "upstream"
    if isinstance(exc, APIError):
        return "upstream"
    return "internal"


def error_status(exc: BaseException) -> int:
    if isinstance(exc, ProxyError):
        return exc.status
    if isinstance(exc, AllModelsFailedError):
        return error_status(_most_meaningful(exc.exceptions))
    if isinstance(exc, Timeout):
        return 504  # the upstream did not answer in time: a gateway timeout, not the client's 408
    if isinstance(exc, (APIConnectionError, StreamError)):
        return 502
    if isinstance(exc, APIError):
        status = exc.status_code or 500
        return status if 400 <= status <= 599 else 502
    if isinstance(exc, ConfigError):
        return 400
    return 500


def error_dict(exc: BaseException, labels: Sequence[str] | None = None) -> dict[str, Any]:
    """The ``error`` object for ``exc``; ``labels`` name the models of an ``AllModelsFailedError``."""
    status = error_status(exc)
    if isinstance(exc, ProxyError):
        return _body(exc.message, exc.type, exc.param, str(status))
    if isinstance(exc, AllModelsFailedError):
        main = _most_meaningful(exc.exceptions)
        names = list(labels or [])
        parts = []
        for i, member in enumerate(exc.exceptions):
            name = names[i] if i < len(names) else getattr(member, "model", None) or f"#{i}"
            parts.append(f"{name}: {_message(member)}")
        message = f"All {len(exc.exceptions)} models failed. " + "; ".join(parts)
        return _body(message, main.type, main.param, main.code or str(error_status(main)))
    if isinstance(exc, APIError):
        return _body(_message(exc), exc.type, exc.param, exc.code or str(status))
    if isinstance(exc, ConfigError):
        return _body(str(exc), "invalid_request_error", None, "400")
    # anything else is a bug of ours, never the client's: orjson.JSONEncodeError *is* TypeError, so a
    # client's too-deep JSON is refused when the body is parsed (params.check_depth), not recognised here
    logger.error("unexpected error while handling a request", exc_info=exc)
    return _body("Internal server error", "server_error", None, "500")


def error_response(exc: BaseException, labels: Sequence[str] | None = None) -> Response:
    status = error_status(exc)
    headers: dict[str, str] = {}
    retry_after = _retry_after(exc)
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    body = orjson.dumps({"error": error_dict(exc, labels)})
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def error_event(exc: BaseException) -> bytes:
    """The one SSE event sent when a stream fails after it started (the openai SDK raises on it)."""
    return b"data: " + orjson.dumps({"error": error_dict(exc)}) + b"\n\n"


def slot_error(exc: BaseException) -> dict[str, Any]:
    """A failed model's slot in a multi-model array answer."""
    return {"error": error_dict(exc)}


def _body(message: str, type: str | None, param: str | None, code: str | None) -> dict[str, Any]:
    return {"message": message, "type": type or "api_error", "param": param, "code": code}


def _message(exc: BaseException) -> str:
    if isinstance(exc, APIError):
        where = "/".join(p for p in (exc.provider, exc.model) if p)
        return f"{exc.message} ({where})" if where else exc.message
    if isinstance(exc, ProxyError):
        return exc.message
    return "Internal server error"


def _retry_after(exc: BaseException) -> int | None:
    if isinstance(exc, ProxyError):
        return exc.retry_after
    if isinstance(exc, AllModelsFailedError):
        exc = _most_meaningful(exc.exceptions)
    if isinstance(exc, APIError) and exc.retry_after is not None and error_status(exc) in (429, 503):
        return max(math.ceil(exc.retry_after), 0)
    return None
