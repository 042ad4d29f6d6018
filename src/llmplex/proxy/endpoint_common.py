"""What the endpoints beyond chat share: the JSON body, model names -> router groups, refused fields, the
route headers of an answer, routing one call through the router (``routed``), and a virtual key's model
list, budget, limits and spend (``key_admit`` before the upstream call, ``key_headers`` on the answer)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from starlette.requests import Request

from llmplex.client import AsyncClient
from llmplex.proxy.errors import ProxyError
from llmplex.proxy.params import MAX_MODELS, check_depth
from llmplex.proxy.request import FORBIDDEN_FIELDS, read_body
from llmplex.proxy.routes import ProxyState, state_of
from llmplex.router.deployments import Deployment
from llmplex.router.operations import route_operation

if TYPE_CHECKING:
    from llmplex.proxy.access_log import RequestRecord
    from llmplex.proxy.keys.limits import Admission
    from llmplex.proxy.keys.model import Principal

__all__ = [
    "deployment_headers",
    "group_of",
    "json_body",
    "key_admit",
    "key_headers",
    "principal_of",
    "model_labels",
    "routed",
    "strip_fields",
]

T = TypeVar("T")

# what the proxy reads and never forwards; retries are the router's business
_DROPPED = ("num_retries", "max_retries", "litellm_logging_obj", "user_config")
# where ``json_body`` leaves the caller ``auth.check`` found (None: the master key, or auth off)
PRINCIPAL_SCOPE_KEY = "llmplex.principal"

Admitted = tuple["Principal", "Admission | None"]


async def json_body(request: Request) -> tuple[ProxyState, AsyncClient, dict[str, Any]]:
    """Authenticate, read and parse the body (a JSON object); raises ``ProxyError``s."""
    state = state_of(request)
    request.scope[PRINCIPAL_SCOPE_KEY] = state.auth.check(request.headers)
    config = state.config
    raw = await read_body(request, config.max_request_body_bytes, config.request_body_timeout, state.deadlines)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProxyError(400, f"Invalid JSON in request body: {exc}") from None
    if not isinstance(body, dict):
        raise ProxyError(400, "Request body must be a JSON object")
    check_depth(body, raw=raw)  # deeper than orjson writes: it could not be forwarded
    client = state.client
    if client is None:
        raise ProxyError(503, "the proxy is starting or stopping", type="service_unavailable")
    return state, client, body


def model_labels(model: Any, default_model: str | None = None) -> list[str]:
    if default_model:
        return [default_model]
    if model is None:
        raise ProxyError(400, "Missing required parameter: 'model'", param="model")
    if isinstance(model, str):
        names = [part.strip() for part in model.split(",")]
    elif isinstance(model, list) and all(isinstance(m, str) for m in model):
        names = [m.strip() for m in model]
    else:
        raise ProxyError(400, "'model' must be a string or an array of strings", param="model")
    if not names or not all(names):
        raise ProxyError(400, "'model' must name at least one model (no empty names)", param="model")
    if len(names) > MAX_MODELS:
        raise ProxyError(400, f"at most {MAX_MODELS} models per request, got {len(names)}", param="model")
    return names


def group_of(state: ProxyState, name: str) -> str:
    group = state.router.group_for(name)
    if group is None:
        available = ", ".join(state.config.model_names())
        raise ProxyError(
            400, f"Invalid model name passed in model={name}. Available models: {available}", param="model"
        )
    return group


def strip_fields(body: dict[str, Any]) -> None:
    """Refuse the call settings a client may not set (they would redirect the proxy's credentials)."""
    for key in FORBIDDEN_FIELDS:
        if key in body:
            raise ProxyError(400, f"'{key}' cannot be set through the proxy; configure it in model_list", param=key)
    for key in _DROPPED:
        body.pop(key, None)


def deployment_headers(label: str, deployment: Deployment) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-llmplex-model", _header(label)), (b"x-llmplex-model-id", _header(deployment.model_id))]
    if deployment.api_base:
        headers.append((b"x-llmplex-api-base", _header(deployment.api_base)))
    return headers


def _header(value: str) -> bytes:
    # header values must be latin-1 and single-line; model names are user-chosen
    return value.encode("latin-1", "replace").replace(b"\r", b" ").replace(b"\n", b" ")


def routed(
    state: ProxyState,
    group: str,
    send: Callable[[Mapping[str, Any], str], Awaitable[T]],
    stats: Callable[[T], tuple[int, bool]],
) -> Awaitable[tuple[T, Deployment]]:
    """One call through the router: ``send(deployment settings, deployment model)`` on the picked deployment."""

    def on(deployment: Deployment) -> Awaitable[T]:
        return send(deployment.params, deployment.model)

    return route_operation(state.router, group, on, stats=stats)


def principal_of(request: Request) -> Principal | None:
    """The virtual key's caller that authentication found for this request; None for the master key."""
    principal: Principal | None = request.scope.get(PRINCIPAL_SCOPE_KEY)
    return principal


async def key_admit(
    request: Request, state: ProxyState, labels: list[str], record: RequestRecord | None, *, charge: bool = True
) -> Admitted | None:
    """What ``chat_completions`` does for a virtual key (ARCHITECTURE "Virtual keys"): the key's model list
    (403), then, with ``charge``, budget (422), rpm/tpm/parallel limits (429) and spend when the answer is
    over. None for the master key."""
    principal = principal_of(request)
    keys = state.keys
    if principal is None or keys is None:
        return None
    if not charge:
        keys.check_models(principal, labels)
        return None
    client = state.client
    config = client.config if client is not None else None
    return principal, await keys.before_request(principal, labels, record, None, config)


def key_headers(
    state: ProxyState, admitted: Admitted | None, record: RequestRecord | None
) -> list[tuple[bytes, bytes]]:
    """LiteLLM's per-key response headers (spend, limits) for an admitted virtual-key call; [] otherwise."""
    if admitted is None or state.keys is None:
        return []
    return state.keys.charges.headers(admitted[0], admitted[1], record)
