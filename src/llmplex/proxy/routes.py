"""Endpoint handlers. They read the per-app ``ProxyState`` (never module state) and call the SDK."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from llmplex import AsyncClient, CompletionStream
from llmplex._concurrency import RaceOutcome
from llmplex._controls import Controls
from llmplex._deadline import Deadlines
from llmplex._latency import DEFAULT_QUANTILE
from llmplex._redact import display_url
from llmplex.exceptions import AllModelsFailedError, APIError, BadRequestError, Timeout
from llmplex.proxy.access_log import RequestRecord, record_of
from llmplex.proxy.auth import Authenticator
from llmplex.proxy.config import ProxyConfig
from llmplex.proxy.disconnect import ClientDisconnected, until_disconnect
from llmplex.proxy.errors import ProxyError, error_response, slot_error
from llmplex.proxy.health import HealthChecker
from llmplex.proxy.keys.service import KeyService
from llmplex.proxy.litellm_headers import (
    call_id_header,
    effective_timeout,
    litellm_route_headers,
    read_request_headers,
)
from llmplex.proxy.metrics import ProxyMetrics
from llmplex.proxy.request import ChatCall, check_fallback_overrides, parse_chat, read_body
from llmplex.proxy.streaming import EventStreamResponse
from llmplex.router import Routed, Router
from llmplex.router.racing import gather_all, position_labels, race
from llmplex.router.support import unsupported_message

if TYPE_CHECKING:
    from llmplex.proxy.batch_service import BatchService

__all__ = ["JSONBytesResponse", "ProxyState", "chat_completions", "state_of"]

_JSON = "application/json"
# --debug: one line per routing decision (never a key: deployments print without credentials)
decisions = logging.getLogger("llmplex.proxy.decisions")


@dataclass(slots=True)
class ProxyState:
    config: ProxyConfig
    router: Router
    auth: Authenticator
    keys: KeyService | None = None  # virtual keys, users, teams, spend (on with a master key)
    client: AsyncClient | None = None
    models_body: bytes = b""
    openapi_body: bytes = b""
    metrics: ProxyMetrics = field(default_factory=ProxyMetrics)
    deadlines: Deadlines = field(default_factory=Deadlines)  # request-body timeouts, one shared timer
    created: int = field(default_factory=lambda: int(time.time()))
    health: HealthChecker | None = None
    prices: dict[str, dict[str, float | int | None]] = field(default_factory=dict)  # model_id -> price-table facts
    routes_body: bytes = b""
    batches: BatchService | None = None  # /v1/files and /v1/batches (routes_batches)


def state_of(request: Request) -> ProxyState:
    state: ProxyState = request.app.state.llmplex
    return state


async def chat_completions(request: Request) -> Response | JSONBytesResponse | EventStreamResponse:
    started = time.perf_counter()
    state = state_of(request)
    record = record_of(request)
    labels: list[str] = []
    sent = read_request_headers(request.scope["headers"])
    try:
        principal = state.auth.check(request.headers)
        config = state.config
        body = await read_body(request, config.max_request_body_bytes, config.request_body_timeout, state.deadlines)
        # --model overrides every name; else an Azure-style path's model (/openai/deployments/{model}/...)
        call = parse_chat(body, config.default_model or request.path_params.get("model"))
        if sent is not None:
            sent.apply(call.options)
            call.call_id = sent.call_id
        labels = call.labels
        groups = [_group(state, name) for name in call.labels]
        if len(groups) > 1:
            labels = call.labels = position_labels(call.labels)  # a model given twice: two attempts
        call.controls, call.options = _controls(state.router, call.options)
        if record is not None:
            record.models, record.stream = call.labels, call.stream
            record.model = call.labels[0] if len(groups) == 1 else "multi"
        client = state.client
        if client is None:
            raise ProxyError(503, "the proxy is starting or stopping", type="service_unavailable")
        keys, admission = state.keys, None
        if principal is not None and keys is not None:  # a virtual key: models, budget, limits (cache only)
            admission = await keys.before_request(principal, call.labels, record, call.options, client.config)
        # the client may leave while the upstream works: then the upstream call is cancelled at once
        work = _answer(state, client, call, groups, started, record)
        answer = await until_disconnect(work, request.receive, _release)
        if principal is not None and keys is not None:
            answer.raw_headers += keys.charges.headers(principal, admission, record)
        return answer
    except ClientDisconnected:
        return Response(status_code=499)
    except Exception as exc:  # every failure becomes an OpenAI-shaped error with the right status
        if record is not None:
            _record_failure(record, exc, labels)
        failed = error_response(exc, labels)
        name, value = call_id_header(None if sent is None else sent.call_id)  # LiteLLM sends it on errors too
        failed.headers[name.decode()] = value.decode()
        if isinstance(exc, Timeout) and sent is not None and sent.timeout is not None:
            failed.headers["x-litellm-timeout"] = sent.timeout.decode("latin-1")
        return failed


async def _answer(
    state: ProxyState,
    client: AsyncClient,
    call: ChatCall,
    groups: list[str],
    started: float,
    record: RequestRecord | None,
) -> Response | JSONBytesResponse | EventStreamResponse:
    if len(groups) == 1:
        routed = await state.router.route(client, groups[0], call.messages, call.options, controls=call.controls)
        if decisions.isEnabledFor(logging.DEBUG):
            _log_answer(call.labels[0], groups[0], routed, started, call.stream)
        return _single(routed, call.labels[0], _litellm(state, client, call, routed), record=record)
    if call.fastest:
        return await _fastest(state, client, call, groups, started, record)
    if call.stream:
        raise ProxyError(
            400,
            "'stream': true with several models needs 'fastest_response': true (a stream has one answer)",
            param="stream",
        )
    return await _all(state, client, call, groups, record)


def _log_answer(label: str, group: str, routed: Routed, started: float, stream: bool) -> None:
    deployment = routed.deployment
    decisions.debug(
        "model=%s group=%s deployment=%s (%s, id %s) stream=%s %s=%.1f ms",
        label,
        group,
        deployment.model,
        deployment.api_base or "default base",
        deployment.model_id,
        stream,
        "headers" if stream else "answered",
        (time.perf_counter() - started) * 1000.0,
    )


def _log_race(outcome: RaceOutcome[Routed], hedge: float | None, started: float) -> None:
    attempts = ", ".join(
        f"{a.label}:{a.status}"
        + (f"@{a.started_at * 1000.0:.0f}ms" if a.started_at is not None else "")
        + (f"/{a.latency_ms:.0f}ms" if a.latency_ms is not None else "")
        + (f" ({type(a.error).__name__})" if a.error is not None else "")
        for a in outcome.attempts
    )
    winner = outcome.value.deployment
    decisions.debug(
        "race winner=%s deployment=%s (id %s) hedge_delay=%s attempts=[%s] total=%.1f ms",
        outcome.winner,
        winner.model,
        winner.model_id,
        "none" if hedge is None else f"{hedge * 1000.0:.0f} ms",
        attempts,
        (time.perf_counter() - started) * 1000.0,
    )


def _release(answer: Response | JSONBytesResponse | EventStreamResponse) -> None:
    if isinstance(answer, EventStreamResponse):
        answer.close()


def _record_failure(record: RequestRecord, exc: Exception, labels: list[str]) -> None:
    if isinstance(exc, ProxyError):
        record.error = "ProxyError"
        record.failed(exc)
        return
    record.error = type(exc).__name__
    if isinstance(exc, AllModelsFailedError):
        for i, member in enumerate(exc.exceptions):
            record.upstream_failed(labels[i] if i < len(labels) else record.model, member)
    elif isinstance(exc, APIError):
        record.upstream_failed(record.model, exc)
    else:
        record.failed(exc)


def _group(state: ProxyState, name: str) -> str:
    problem = state.router.unsupported(name)
    if problem is not None:
        raise ProxyError(400, unsupported_message(problem, name), param="model")
    group = state.router.group_for(name)
    if group is None:
        available = ", ".join(state.config.model_names())
        raise ProxyError(
            400,
            f"Invalid model name passed in model={name}. Available models: {available}",
            param="model",
        )
    if (wrong := state.router.chat_problem(group)) is not None:
        raise ProxyError(400, wrong, param="model")
    return group


def _controls(router: Router, options: dict[str, Any]) -> tuple[Controls | None, dict[str, Any]]:
    try:
        controls, rest = router.split_controls(options)
    except BadRequestError as exc:  # a malformed control field: the client's 400, naming the field
        raise ProxyError(400, exc.message, param=exc.param) from None
    if controls is not None:
        check_fallback_overrides(controls)
    return controls, rest


def _litellm(state: ProxyState, client: AsyncClient, call: ChatCall, routed: Routed) -> list[tuple[bytes, bytes]]:
    """LiteLLM's per-request response headers (see ``litellm_headers``)."""
    controls = call.controls
    retries = controls.num_retries if controls is not None else None
    max_retries = state.router.settings.num_retries if retries is None else retries
    timeout = effective_timeout(call.options, routed.deployment, client.config.timeout)
    deployment = routed.deployment
    result = routed.result
    api_base = result.hidden_params.get("api_base") or deployment.api_base
    headers = [
        *litellm_route_headers(
            deployment.model_id,
            str(api_base) if api_base else None,
            deployment.model_name,
            routed.retries,
            routed.fallbacks,
            max_retries,
            timeout,
        ),
        call_id_header(call.call_id),
    ]
    if not isinstance(result, CompletionStream):
        cost = result.hidden_params.get("response_cost")
        if cost is not None:
            headers.append((b"x-litellm-response-cost", repr(float(cost)).encode()))
    return headers


def _single(
    routed: Routed,
    label: str,
    litellm: list[tuple[bytes, bytes]],
    extra: Mapping[str, str] | None = None,
    record: RequestRecord | None = None,
) -> JSONBytesResponse | EventStreamResponse:
    result = routed.result
    deployment = routed.deployment
    if record is not None:
        record.winner, record.deployment = label, deployment.model_id
    api_base = result.hidden_params.get("api_base") or deployment.api_base
    base = str(api_base) if api_base else None
    headers = [*_route_headers(label, deployment.model_id, base), *litellm]
    if extra:
        headers += [(name.encode("latin-1"), _header_value(value).encode("latin-1")) for name, value in extra.items()]
    if isinstance(result, CompletionStream):
        return EventStreamResponse(result, headers, record)
    if record is not None:
        record.response = result
    return JSONBytesResponse(result.wire_bytes(), headers)


class JSONBytesResponse:
    """A 200 JSON answer sent as two ASGI messages (what Starlette's ``Response`` does, minus its generality)."""

    __slots__ = ("body", "raw_headers", "status_code")

    def __init__(self, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.body = body
        self.status_code = 200
        headers += [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        self.raw_headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})


@functools.lru_cache(maxsize=1024)  # configured names, ids and bases: a bounded set
def _route_headers(label: str, model_id: str, api_base: str | None) -> tuple[tuple[bytes, bytes], ...]:
    """Which model and deployment answered, as raw header pairs (computed once per combination)."""
    headers = [(b"x-llmplex-model", _header_value(label)), (b"x-llmplex-model-id", _header_value(model_id))]
    if api_base:
        headers.append((b"x-llmplex-api-base", _header_value(display_url(api_base))))
    return tuple((name, value.encode("latin-1")) for name, value in headers)


def _header_value(value: str) -> str:
    # header values must be latin-1 and single-line; model names are user-chosen
    return value.encode("latin-1", "replace").decode("latin-1").replace("\r", " ").replace("\n", " ")


async def _fastest(
    state: ProxyState,
    client: AsyncClient,
    call: ChatCall,
    groups: list[str],
    started: float,
    record: RequestRecord | None,
) -> JSONBytesResponse | EventStreamResponse:
    options = {**call.options, "stream": True} if call.stream else call.options
    hedge = call.hedge_delay
    if hedge == "auto":
        hedge, _ = state.router.hedge_delay(groups[0], call.hedge_quantile or DEFAULT_QUANTILE)
    outcome = await race(
        state.router, client, call.labels, groups, call.messages, options, hedge_delay=hedge, controls=call.controls
    )
    if record is not None:
        _record_race(record, outcome, hedge is not None)
    if decisions.isEnabledFor(logging.DEBUG):
        _log_race(outcome, hedge, started)
    winner = outcome.value
    upstream_ms = outcome.attempts[outcome.winner_index].latency_ms or 0.0
    overhead = max((time.perf_counter() - started) * 1000.0 - upstream_ms, 0.0)
    extra = {"x-llmplex-overhead-ms": f"{overhead:.3f}", "x-llmplex-fastest-response": "true"}
    if hedge is not None:
        extra["x-llmplex-hedge-delay-ms"] = f"{hedge * 1000.0:.3f}"
    if not isinstance(winner.result, CompletionStream):
        cost = winner.result.hidden_params.get("response_cost")
        if cost is not None:
            extra["x-llmplex-response-cost"] = repr(float(cost))
    return _single(winner, outcome.winner, _litellm(state, client, call, winner), extra, record)


def _record_race(record: RequestRecord, outcome: RaceOutcome[Routed], hedged: bool) -> None:
    record.raced, record.model = True, outcome.winner
    for i, attempt in enumerate(outcome.attempts):
        if attempt.status == "failed" and attempt.error is not None:
            record.upstream_failed(attempt.label, attempt.error)
        elif attempt.status == "cancelled":
            record.race_cancelled.append(attempt.label)
        if hedged and i > 0 and attempt.status != "not_started":
            record.hedges.append(attempt.label)


async def _all(
    state: ProxyState, client: AsyncClient, call: ChatCall, groups: list[str], record: RequestRecord | None
) -> Response:
    results = await gather_all(state.router, client, groups, call.messages, call.options, call.controls)
    if all(isinstance(r, BaseException) for r in results):
        errors = [r for r in results if isinstance(r, Exception)]
        if len(errors) == len(results):
            raise AllModelsFailedError("all models failed", errors)
    if decisions.isEnabledFor(logging.DEBUG):
        outcomes = (
            f"{label}:{'ok' if isinstance(r, Routed) else type(r).__name__}"
            for label, r in zip(call.labels, results, strict=True)
        )
        decisions.debug("fan-out models=[%s]", ", ".join(outcomes))
    if record is not None:  # (when all failed, the error path records them)
        for label, result in zip(call.labels, results, strict=True):
            if isinstance(result, BaseException):
                record.upstream_failed(label, result)
    parts: list[bytes] = []
    for result in results:
        if isinstance(result, Routed) and not isinstance(result.result, CompletionStream):
            parts.append(result.result.wire_bytes())
        else:
            parts.append(orjson.dumps(slot_error(result if isinstance(result, BaseException) else RuntimeError())))
    return Response(b"[" + b",".join(parts) + b"]", media_type=_JSON)
