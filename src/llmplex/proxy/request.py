"""Reading and checking a chat request body: size limit, JSON, required fields, control fields.

Only what routing needs is checked here (the SDK validates messages and parameters); control
fields are removed so they never reach a provider.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

from llmplex._controls import Controls
from llmplex._deadline import Deadlines
from llmplex.proxy.disconnect import ClientDisconnected
from llmplex.proxy.errors import ProxyError
from llmplex.proxy.params import (
    ADAPTER_KEYS,
    MAX_MODELS,
    Hedge,
    check_depth,
    check_extra_body,
    check_hedge,
    check_messages,
    check_params,
)

__all__ = ["ChatCall", "check_fallback_overrides", "parse_chat", "read_body"]

# fields only the proxy reads; never forwarded upstream
CONTROL_FIELDS = ("fastest_response", "hedge_delay", "hedge_quantile")
# call settings a client may not set through the proxy: they would redirect the proxy's credentials
FORBIDDEN_FIELDS = (
    "api_key",
    "api_base",
    "base_url",
    "api_version",
    "custom_llm_provider",
    "extra_headers",
    "headers",
    # SDK call settings that would let a client change how the proxy behaves
    "mock_delay",
    "stream_first_token_timeout",
    "stream_idle_timeout",
)
# LiteLLM-internal fields a client may echo back; never forwarded. (num_retries, fallbacks, mock_testing_*,
# priority: the router's per-request controls, see llmplex._controls)
_DROPPED_FIELDS = ("litellm_logging_obj", "user_config")


@dataclass(slots=True)
class ChatCall:
    labels: list[str]  # model names as the client sent them
    messages: list[dict[str, Any]]
    options: dict[str, Any]  # everything else, for AsyncClient.completion
    stream: bool
    fastest: bool
    hedge_delay: Hedge  # seconds, "auto" (from the first model's latencies) or None (no hedging)
    hedge_quantile: float | None = None  # with "auto"; None = the default (p90)
    controls: Controls | None = None  # LiteLLM's per-request controls, out of ``options`` (routes.py)
    call_id: bytes | None = None  # the client's x-litellm-call-id


async def read_body(request: Request, limit: int, timeout: float | None, deadlines: Deadlines) -> bytes:
    """The body, refusing (413) anything over ``limit`` bytes, declared or actually sent.

    A body still arriving after ``timeout`` seconds is a 408 (a slowloris client holds a connection,
    never the event loop, but it must not hold it forever). ``deadlines``: the app's shared timer.
    """
    if timeout is None:
        return await _read(request, limit)
    task = asyncio.current_task()
    assert task is not None
    deadlines.enter(task, task.get_loop().time() + timeout)
    try:
        return await _read(request, limit)
    except asyncio.CancelledError:
        if deadlines.leave(task) and task.uncancel() == 0:
            raise ProxyError(408, f"Request body not received within {timeout:g} seconds", type="timeout") from None
        raise
    finally:
        deadlines.leave(task)


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _too_large(limit)
        except ValueError:
            raise ProxyError(400, "invalid Content-Length header") from None
    # straight from ASGI receive(): Request.stream() is an async generator, measurably slower per request
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> ProxyError:
    return ProxyError(413, f"Request body too large: the limit is {limit} bytes", param=None)


def parse_chat(body: bytes, default_model: str | None) -> ChatCall:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProxyError(400, f"Invalid JSON in request body: {exc}") from None
    if not isinstance(data, dict):
        raise ProxyError(400, "Request body must be a JSON object")
    check_depth(data, raw=body)
    messages = data.pop("messages", None)
    if messages is None:
        raise ProxyError(400, "Missing required parameter: 'messages'", param="messages")
    if not isinstance(messages, list) or not messages:
        raise ProxyError(400, "'messages' must be a non-empty array of message objects", param="messages")
    check_messages(messages)
    model = data.pop("model", None)
    labels = [default_model] if default_model else _model_names(model)
    if len(labels) > MAX_MODELS:
        raise ProxyError(400, f"at most {MAX_MODELS} models per request, got {len(labels)}", param="model")
    _check_fields(data)
    for key in _DROPPED_FIELDS:
        data.pop(key, None)
    fastest = data.pop("fastest_response", False)
    if not isinstance(fastest, bool):
        raise ProxyError(400, "'fastest_response' must be true or false", param="fastest_response")
    hedge, quantile = check_hedge(data.pop("hedge_delay", None), data.pop("hedge_quantile", None))
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise ProxyError(400, "'stream' must be true or false", param="stream")
    check_params(data)
    _check_mocks(data)
    return ChatCall(
        labels=labels,
        messages=messages,
        options=data,
        stream=bool(stream),
        fastest=fastest,
        hedge_delay=hedge,
        hedge_quantile=quantile,
    )


def _check_fields(data: dict[str, Any]) -> None:
    """Fields a client may not set: credentials and call settings, what the adapters build, bad extra_body."""
    for key in FORBIDDEN_FIELDS:
        if key in data:
            raise ProxyError(400, f"'{key}' cannot be set through the proxy; configure it in model_list", param=key)
    for key in data:  # model and messages were taken out already; stream is read by the caller
        if key in ADAPTER_KEYS and key != "stream":
            raise ProxyError(400, f"'{key}' cannot be set: the proxy builds it from the request", param=key)
    extra = data.get("extra_body")
    if extra is not None:
        check_extra_body(extra, FORBIDDEN_FIELDS)


def check_fallback_overrides(controls: Controls) -> None:
    """A fallback ``{"model": ..., ...}`` may change the request, never the proxy's credentials or endpoints."""
    for key, spec in controls.specs.items():
        for target in spec.for_any or ():
            for name in target.overrides:
                if name in FORBIDDEN_FIELDS or name in CONTROL_FIELDS or name == "stream":
                    raise ProxyError(400, f"'{key}[].{name}' cannot be set through the proxy", param=key)


def _check_mocks(data: dict[str, Any]) -> None:
    """LiteLLM's mock fields through the proxy: a text answer (no upstream call) or a mock timeout."""
    mock = data.get("mock_response")
    if mock is not None and not isinstance(mock, str):
        raise ProxyError(400, "'mock_response' must be a string", param="mock_response")
    timeout = data.get("mock_timeout")
    if timeout is not None and not isinstance(timeout, bool):
        raise ProxyError(400, "'mock_timeout' must be true or false", param="mock_timeout")


def _model_names(model: Any) -> list[str]:
    if model is None:
        raise ProxyError(400, "Missing required parameter: 'model'", param="model")
    if isinstance(model, str):
        names = [part.strip() for part in model.split(",")] if "," in model else [model.strip()]
    elif isinstance(model, list) and all(isinstance(m, str) for m in model):
        names = [m.strip() for m in model]
    else:
        raise ProxyError(400, "'model' must be a string or an array of strings", param="model")
    if not names or not all(names):
        raise ProxyError(400, "'model' must name at least one model (no empty names)", param="model")
    return names
