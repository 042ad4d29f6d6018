"""``create_app(config)``: the Starlette app. No module globals: two apps in one process are independent.

The lifespan owns one ``AsyncClient`` (so one aiohttp session per worker process) and closes it
on shutdown. ``app_from_env`` is the import-string factory uvicorn workers use.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Mapping

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from llmplex import AsyncClient
from llmplex._malloc_trim import fix_mmap_threshold
from llmplex.proxy.access_log import ObservabilityMiddleware
from llmplex.proxy.auth import Authenticator
from llmplex.proxy.batch_service import BatchService
from llmplex.proxy.config import ProxyConfig, load_config, single_model_config
from llmplex.proxy.errors import ProxyError, error_response
from llmplex.proxy.health import HealthChecker
from llmplex.proxy.keys.service import KeyService
from llmplex.proxy.metrics import metrics_endpoint
from llmplex.proxy.openapi import openapi_document
from llmplex.proxy.routes import ProxyState, chat_completions
from llmplex.proxy.routes_batches import batch_routes
from llmplex.proxy.routes_capabilities import CAPABILITY_HANDLERS, capability_routes
from llmplex.proxy.routes_health import health_routes, route_table
from llmplex.proxy.routes_keys import key_routes
from llmplex.proxy.routes_models import list_models, models_body, openapi
from llmplex.proxy.warmup import warm_up
from llmplex.router import Router

__all__ = ["CONFIG_ENV", "MODEL_ENV", "ProxyApp", "app_from_env", "create_app", "freeze_startup_objects"]

# how the CLI hands its settings to uvicorn worker processes (each builds its own app)
CONFIG_ENV = "LLMPLEX_PROXY_CONFIG"
MODEL_ENV = "LLMPLEX_PROXY_MODEL"


_CHAT_PATHS = frozenset({"/chat/completions", "/v1/chat/completions"})


class ProxyApp:
    """The proxy's ASGI app. ``POST .../chat/completions`` goes straight to its handler; all else to Starlette.

    The handler already turns every failure into an OpenAI-shaped response, so Starlette's error
    and exception middlewares, router and request wrapper only cost time on the hot path (measured:
    about a fifth of the proxy's CPU per request). Observability wraps both paths alike.
    """

    def __init__(self, app: Starlette, observe: ObservabilityMiddleware) -> None:
        self.app = app  # the Starlette app: every other route, the lifespan, error handling
        self.observe = observe
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            handler = chat_completions if path in _CHAT_PATHS else CAPABILITY_HANDLERS.get(path)
            if handler is not None:
                scope["app"] = self.app  # what Request.app resolves to
                await self.observe.serve(scope, receive, send, handler)
                return
        await self.app(scope, receive, send)


def create_app(config: ProxyConfig) -> ProxyApp:
    keys = KeyService(config) if config.master_key else None  # virtual keys need a master key to manage them
    state = ProxyState(
        config=config,
        router=Router.from_settings(config.deployments, config.router, config.redis),
        auth=Authenticator(config.master_key, [keys.authenticate] if keys is not None else ()),
        keys=keys,
    )
    state.models_body = models_body(config, state.created)
    state.openapi_body = orjson.dumps(openapi_document(config.model_names()))
    state.health = HealthChecker(config.deployments, config.health)
    metrics = state.metrics
    batches = state.batches = BatchService(
        config, state.router, lambda: state.client, lambda: metrics.requests_in_flight, keys
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Warm up before serving (uvicorn accepts connections, and readiness says ready, only after this):
        # the first request would otherwise pay ~0.3 s (imports, the price table; see warmup.py).
        warming = asyncio.get_running_loop().run_in_executor(None, warm_up, config)
        fix_mmap_threshold()  # large upstream bodies go back to the OS when freed (see _malloc_trim)
        client = AsyncClient(config.client_config())
        await client.open()
        await state.router.start()  # the shared (Redis) router state connects here, in the serving loop
        if keys is not None:
            await keys.start()
        await warming
        state.client = client
        assert state.health is not None
        state.health.start_background(client)
        await batches.start()  # batch jobs resume (in the background) when a database exists
        try:
            yield
        finally:
            await batches.aclose()
            await state.health.stop_background()
            state.client = None
            await client.aclose()
            await state.router.aclose()
            if keys is not None:
                await keys.close()

    routes = [
        Route("/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        # Azure-style and engine paths: the path names the model (group)
        Route("/openai/deployments/{model:path}/chat/completions", chat_completions, methods=["POST"]),
        Route("/deployments/{model:path}/chat/completions", chat_completions, methods=["POST"]),
        Route("/engines/{model:path}/chat/completions", chat_completions, methods=["POST"]),
        Route("/models", list_models, methods=["GET"]),
        Route("/v1/models", list_models, methods=["GET"]),
        *health_routes(),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *capability_routes(),
        *batch_routes(),
        *key_routes(),
    ]
    state.routes_body = route_table(routes)
    # x-request-id, in-flight gauge, request metrics and the access log, for every route
    observe = Middleware(ObservabilityMiddleware, metrics=state.metrics, routes=[r.path for r in routes])
    # unknown paths and wrong methods answer in the OpenAI error shape too, not Starlette's plain text
    handlers = {HTTPException: _http_error}
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[observe], exception_handlers=handlers)
    app.state.llmplex = state
    return ProxyApp(app, ObservabilityMiddleware(app, metrics=state.metrics, routes=[r.path for r in routes]))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"Not found: {request.method} {request.url.path} is not an llmplex route (see /routes)"
        error = ProxyError(404, message, type="not_found_error")
    elif exc.status_code == 405:
        error = ProxyError(405, f"Method {request.method} is not allowed on {request.url.path}")
    else:
        error = ProxyError(exc.status_code, str(exc.detail))
    response = error_response(error)
    if exc.headers:
        response.headers.update(exc.headers)  # e.g. 405's Allow
    return response


# Garbage-collector settings of a server process. The request path makes no reference cycles (requests
# are freed by reference counting; the soak benchmark watches RSS), so collections find next to nothing
# and only their pauses matter. A pause lasts as long as the scan of the generations collected, and every
# open stream stalls for it:
# - young collections every 2,000 net allocations: with 500 streams in flight one at 10,000 took 10-16 ms
#   on the benchmark VM;
# - a middle collection every 2 young ones, not 10: it scans what survived them, and at 10 it was the
#   longest pause (30-55 ms) under 500 slow streams; at 2 it is under 10 ms. Proxied throughput did not
#   change measurably (each surviving object is scanned about as often either way);
# - full collections after 1000 middle ones instead of 10: with 500 streams in flight a full collection
#   scans ~80k objects, a 35-50 ms pause.
GC_THRESHOLDS = (2_000, 2, 1000)


def freeze_startup_objects() -> None:
    """Move everything built at startup (modules, config, app) out of the garbage collector's reach,
    and make full collections rare (see ``GC_THRESHOLDS``).

    Startup objects live as long as the process; without this every full collection rescans them,
    which shows up as latency spikes of tens of milliseconds under load.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def app_from_env(environ: Mapping[str, str] | None = None) -> ProxyApp:
    """The app described by ``LLMPLEX_PROXY_CONFIG`` (a config path) or ``LLMPLEX_PROXY_MODEL``."""
    env = os.environ if environ is None else environ
    path = env.get(CONFIG_ENV)
    model = env.get(MODEL_ENV)
    if path:
        app = create_app(load_config(path, environ=env))
    elif model:
        # the CLI's --model settings as JSON ({"model", "alias", "params", "drop_params"}), or a bare name
        spec = orjson.loads(model) if model.startswith("{") else {"model": model}
        app = create_app(single_model_config(spec.pop("model"), environ=env, **spec))
    else:
        raise RuntimeError(f"set {CONFIG_ENV} (a config file) or {MODEL_ENV} (a model name)")
    if env.get("LLMPLEX_DEBUG"):  # --debug, for the workers (see cli.DEBUG_ENV)
        logging.getLogger("llmplex").setLevel(logging.DEBUG)
    freeze_startup_objects()  # each worker process, as the single-process CLI does
    return app
