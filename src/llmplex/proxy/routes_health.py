"""Health and introspection endpoints with LiteLLM's paths and JSON shapes.

Public (load balancers call them without a key): ``/health/liveliness``, ``/health/liveness``,
``/health/readiness``. Behind the master key: ``/health`` (active checks), ``/model/info``,
``/v1/model/info``, ``/v2/model/info``, ``/model_group/info``, ``/routes``. No credential is ever shown.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

import llmplex
from llmplex.cost import model_facts
from llmplex.proxy.errors import ProxyError, error_response
from llmplex.proxy.model_info import deployment_info, group_info, paged
from llmplex.proxy.routes import ProxyState, state_of
from llmplex.router import Deployment

__all__ = ["health_routes", "route_table"]

_JSON = "application/json"


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=_JSON)


async def health_liveliness(request: Request) -> Response:
    return Response(b'"I\'m alive!"', media_type=_JSON)


async def health_readiness(request: Request) -> Response:
    state = state_of(request)
    ready = state.client is not None
    level = logging.getLogger("llmplex").getEffectiveLevel()
    body: dict[str, Any] = {
        "status": "healthy" if ready else "starting",
        "db": "Not connected",
        "cache": None,
        "litellm_version": llmplex.__version__,  # LiteLLM's field name, llmplex's version
        "success_callbacks": [],
        "use_aiohttp_transport": True,
        "log_level": logging.getLevelName(level),
        "is_detailed_debug": level <= logging.DEBUG,
        "show_no_redis_warning": False,
        "models": len(state.config.model_names()),
    }
    if state.keys is not None:  # a database outage is reported, never fatal: inference keeps serving
        keys = state.keys.health()
        # "db" keeps LiteLLM's two values; llmplex's own state ("unavailable", "not created yet") is "db_state"
        keys["db_state"] = keys.pop("db")
        body["db"] = "connected" if keys["db_state"] == "connected" else "Not connected"
        body.update(keys)
    return _json(body, 200 if ready else 503)


async def health(request: Request) -> Response:
    state = state_of(request)
    try:
        state.auth.check(request.headers)
        model = request.query_params.get("model")
        model_id = request.query_params.get("model_id")
        checker = state.health
        if checker is None or state.client is None:
            raise ProxyError(503, "the proxy is starting or stopping", type="service_unavailable")
        if checker.settings.background:
            result = checker.cached(model=model, model_id=model_id)
        else:
            result = await checker.check(state.client, model=model, model_id=model_id)
    except ProxyError as exc:
        return error_response(exc)
    # a question about one model answers 503 when none of its deployments is healthy (as LiteLLM)
    status = 503 if (model or model_id) and result["healthy_count"] == 0 else 200
    return _json(result, status)


def _prices(state: ProxyState, deployment: Deployment) -> dict[str, float | int | None]:
    """Costs and context window from the price table, once per deployment."""
    cached = state.prices.get(deployment.model_id)
    if cached is None:
        prefix = f"{deployment.provider}/"
        name = deployment.model[len(prefix) :] if deployment.model.startswith(prefix) else deployment.model
        cached = model_facts(name, deployment.provider) if deployment.provider and "*" not in name else {}
        state.prices[deployment.model_id] = cached
    return cached


def _infos(state: ProxyState) -> list[dict[str, Any]]:
    return [deployment_info(d, _prices(state, d)) for d in state.config.deployments]


async def model_info_v1(request: Request) -> Response:
    state = state_of(request)
    try:
        state.auth.check(request.headers)
        wanted = request.query_params.get("litellm_model_id")
        infos = _infos(state)
        if wanted is not None:
            infos = [i for i in infos if i["model_info"]["id"] == wanted]
            if not infos:
                raise ProxyError(400, f"Model id = {wanted} not found on llmplex proxy", param="litellm_model_id")
    except ProxyError as exc:
        return error_response(exc)
    return _json({"data": infos})


async def model_info_v2(request: Request) -> Response:
    state = state_of(request)
    query = request.query_params
    try:
        state.auth.check(request.headers)
        page = _positive(query.get("page"), "page", 1)
        size = _positive(query.get("size"), "size", 50)
    except ProxyError as exc:
        return error_response(exc)
    infos = _infos(state)
    if model := query.get("model"):
        infos = [i for i in infos if i["model_name"] == model]
    if model_id := query.get("modelId"):
        infos = [i for i in infos if i["model_info"]["id"] == model_id]
    if search := query.get("search"):
        infos = [i for i in infos if search.lower() in i["model_name"].lower()]
    return _json(paged(infos, page, size))


def _positive(raw: str | None, name: str, default: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ProxyError(422, f"'{name}' must be a positive integer", param=name)
    return value


async def model_group_info(request: Request) -> Response:
    state = state_of(request)
    try:
        state.auth.check(request.headers)
    except ProxyError as exc:
        return error_response(exc)
    groups: dict[str, list[Deployment]] = {}
    for deployment in state.config.deployments:
        groups.setdefault(deployment.model_name, []).append(deployment)
    wanted = request.query_params.get("model_group")
    data = [
        group_info(name, members, _prices(state, members[0]))
        for name, members in groups.items()
        if wanted is None or name == wanted
    ]
    return _json({"data": data})


async def routes(request: Request) -> Response:
    state = state_of(request)
    try:
        state.auth.check(request.headers)
    except ProxyError as exc:
        return error_response(exc)
    return Response(state.routes_body, media_type=_JSON)


def route_table(table: Sequence[BaseRoute]) -> bytes:
    """``/routes``' body: LiteLLM's ``{"routes": [{"path", "methods", "name", "endpoint"}]}``."""
    listed = []
    for route in table:
        if isinstance(route, Route):
            methods = sorted(route.methods or ())
            listed.append({"path": route.path, "methods": methods, "name": route.name, "endpoint": route.name})
    return orjson.dumps({"routes": listed})


def health_routes() -> list[Route]:
    return [
        Route("/health", health, methods=["GET"]),
        Route("/health/liveliness", health_liveliness, methods=["GET"]),
        Route("/health/liveness", health_liveliness, methods=["GET"]),
        Route("/health/readiness", health_readiness, methods=["GET"]),
        Route("/model/info", model_info_v1, methods=["GET"]),
        Route("/v1/model/info", model_info_v1, methods=["GET"]),
        Route("/v2/model/info", model_info_v2, methods=["GET"]),
        Route("/model_group/info", model_group_info, methods=["GET"]),
        Route("/routes", routes, methods=["GET"]),
    ]
