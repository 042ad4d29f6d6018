"""``/v1/models`` (what the caller may call) and ``/openapi.json``: the routes that list the configured model names."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from llmplex.proxy.config import ProxyConfig
from llmplex.proxy.errors import ProxyError, error_response
from llmplex.proxy.model_info import listed_names
from llmplex.proxy.routes import state_of

__all__ = ["list_models", "models_body", "openapi"]

_JSON = "application/json"


async def list_models(request: Request) -> Response:
    state = state_of(request)
    try:
        principal = state.auth.check(request.headers)
    except ProxyError as exc:
        return error_response(exc)
    if principal is not None and state.keys is not None:  # only what this key may call
        names = state.keys.visible_models(principal, state.config.model_names())
        return Response(_models_json(names, state.created), media_type=_JSON)
    if not state.models_body:  # wildcards list the price table's models: read once, off the event loop
        config = state.config
        body = functools.partial(models_body, config, state.created, expand=True)
        state.models_body = await asyncio.get_running_loop().run_in_executor(None, body)
    return Response(state.models_body, media_type=_JSON)


def models_body(config: ProxyConfig, created: int, *, expand: bool = False) -> bytes:
    """``/v1/models``; b"" when wildcard deployments need ``expand=True`` (the price table, ~0.3 s to load)."""
    names = config.model_names()
    if any(d.wildcard for d in config.deployments):
        if not expand:
            return b""
        names = listed_names(names, config.deployments)
    return _models_json(names, created)


def _models_json(names: list[str], created: int) -> bytes:
    data: list[dict[str, Any]] = [
        {"id": name, "object": "model", "created": created, "owned_by": "llmplex"} for name in names
    ]
    return orjson.dumps({"object": "list", "data": data})


async def openapi(request: Request) -> Response:
    state = state_of(request)
    try:
        state.auth.check(request.headers)  # the document lists every model name, as /v1/models does
    except ProxyError as exc:
        return error_response(exc)
    return Response(state.openapi_body, media_type=_JSON)
