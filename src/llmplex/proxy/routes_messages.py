"""``POST /v1/messages`` and ``/v1/messages/count_tokens``: the Anthropic Messages API in, any provider out.

Errors here are in Anthropic's format (``{"type": "error", "error": {"type", "message"}}``), auth included
(the anthropic SDK sends the proxy key as ``x-api-key``). The body is checked as Anthropic checks it
(``max_tokens`` required, roles, content) before any upstream call, then routed: relayed as is to an
Anthropic deployment, translated for the others (``llmplex.messages_api``). Streams carry Anthropic's exact
event sequence; a failure after the stream started is one ``error`` event. ``"model": "a, b"`` with
``"fastest_response": true`` races the models on the first content token; the losers are cancelled.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from llmplex._concurrency import race_first
from llmplex.client import AsyncClient
from llmplex.messages_api import MessagesAnswer, count_tokens, messages
from llmplex.messages_format import MessagesFormatError, anthropic_error_body, validate_messages_request
from llmplex.messages_stream import AnthropicStreamTranslator, encode_event
from llmplex.proxy.access_log import RequestRecord, record_of
from llmplex.proxy.byte_stream import ByteStreamResponse
from llmplex.proxy.disconnect import ClientDisconnected, until_disconnect
from llmplex.proxy.endpoint_common import (
    deployment_headers,
    group_of,
    json_body,
    key_admit,
    key_headers,
    model_labels,
    routed,
    strip_fields,
)
from llmplex.proxy.errors import ProxyError, error_dict, error_status
from llmplex.proxy.routes import JSONBytesResponse, ProxyState
from llmplex.router.deployments import Deployment

__all__ = ["count_tokens_endpoint", "messages_endpoint"]

# request headers relayed to an Anthropic upstream
_FORWARDED = ("anthropic-version", "anthropic-beta")


async def messages_endpoint(request: Request) -> Response | JSONBytesResponse | ByteStreamResponse:
    record = record_of(request)
    try:
        state, client, body = await json_body(request)
        labels, fastest = _labels(state, body)
        validate_messages_request(body)
        groups = [group_of(state, label) for label in labels]
        if len(groups) > 1 and not fastest:
            raise ProxyError(400, "several models need 'fastest_response': true (a message has one answer)")
        if record is not None:
            record.models, record.stream = labels, bool(body.get("stream"))
            record.model = labels[0] if len(labels) == 1 else "multi"
        headers = {name: request.headers[name] for name in _FORWARDED if name in request.headers}
        admitted = await key_admit(request, state, labels, record)
        work = _answer(state, client, labels, groups, body, headers, record)
        answer = await until_disconnect(work, request.receive, _release)
        answer.raw_headers += key_headers(state, admitted, record)
        return answer
    except ClientDisconnected:
        return Response(status_code=499)
    except Exception as exc:
        if record is not None:
            record.error = type(exc).__name__
        return anthropic_error_response(exc, record)


async def count_tokens_endpoint(request: Request) -> Response:
    record = record_of(request)
    try:
        state, client, body = await json_body(request)
        labels, _ = _labels(state, body)
        validate_messages_request(body, count_tokens=True)
        if len(labels) != 1:
            raise ProxyError(400, "count_tokens takes one model", param="model")
        group = group_of(state, labels[0])
        if record is not None:
            record.models, record.model = labels, labels[0]
        await key_admit(request, state, labels, record, charge=False)  # a key's model list only
        headers = {name: request.headers[name] for name in _FORWARDED if name in request.headers}

        async def send(settings: Mapping[str, Any], model: str) -> bytes:
            return await count_tokens(client, model, body, settings, headers=headers)

        answer, _ = await until_disconnect(routed(state, group, send, lambda _: (0, True)), request.receive)
        return Response(answer, media_type="application/json")
    except ClientDisconnected:
        return Response(status_code=499)
    except Exception as exc:
        if record is not None:
            record.error = type(exc).__name__
        return anthropic_error_response(exc, record)


def _labels(state: ProxyState, body: dict[str, Any]) -> tuple[list[str], bool]:
    strip_fields(body)
    fastest = body.pop("fastest_response", False)
    if not isinstance(fastest, bool):
        raise ProxyError(400, "'fastest_response' must be true or false", param="fastest_response")
    for key in ("hedge_delay", "hedge_quantile"):
        if key in body:
            raise ProxyError(400, f"'{key}' is not supported on /v1/messages yet", param=key)
    labels = model_labels(body.get("model"), state.config.default_model)
    if state.config.default_model:
        body["model"] = state.config.default_model
    return labels, fastest


def anthropic_error_response(exc: BaseException, record: RequestRecord | None = None) -> Response:
    if isinstance(exc, MessagesFormatError):
        status, message = 400, str(exc)
    else:
        status = error_status(exc)
        message = str(error_dict(exc)["message"])
    body = anthropic_error_body(status, message, record.request_id if record is not None else None)
    headers = {"request-id": record.request_id} if record is not None else {}
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, (int, float)) and status in (429, 503, 529):
        headers["retry-after"] = str(max(int(retry_after + 0.999), 0))
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


def _release(answer: Response | JSONBytesResponse | ByteStreamResponse) -> None:
    if isinstance(answer, ByteStreamResponse):
        answer.close()


def _stats(answer: MessagesAnswer) -> tuple[int, bool]:
    tokens = answer.usage.get("input_tokens", 0) + answer.usage.get("output_tokens", 0)
    return tokens, answer.stream is None


async def _answer(
    state: ProxyState,
    client: AsyncClient,
    labels: list[str],
    groups: list[str],
    body: dict[str, Any],
    headers: Mapping[str, str],
    record: RequestRecord | None,
) -> JSONBytesResponse | ByteStreamResponse:
    async def send(settings: Mapping[str, Any], model: str) -> MessagesAnswer:
        return await messages(client, model, body, settings, headers=headers)

    if len(groups) == 1:
        answer, deployment = await routed(state, groups[0], send, _stats)
        return _respond(answer, labels[0], deployment, record)
    outcome = await race_first(labels, [_contender(state, g, send) for g in groups], discard=_discard)
    answer, deployment = outcome.value
    if record is not None:
        record.raced, record.winner = True, outcome.winner
        record.race_cancelled.extend(a.label for a in outcome.attempts if a.status == "cancelled")
    return _respond(answer, outcome.winner, deployment, record, fastest=True)


def _contender(
    state: ProxyState, group: str, send: Callable[[Mapping[str, Any], str], Awaitable[MessagesAnswer]]
) -> Callable[[], Awaitable[tuple[MessagesAnswer, Deployment]]]:
    return functools.partial(_contend, state, group, send)


async def _contend(
    state: ProxyState, group: str, send: Callable[[Mapping[str, Any], str], Awaitable[MessagesAnswer]]
) -> tuple[MessagesAnswer, Deployment]:
    answer, deployment = await routed(state, group, send, _stats)
    if answer.stream is not None:
        try:
            await answer.stream.peek_first_content()  # the race is won by the first content token
        except BaseException:
            answer.close()
            raise
    return answer, deployment


async def _discard(value: tuple[MessagesAnswer, Deployment]) -> None:
    value[0].close()


def _respond(
    answer: MessagesAnswer, label: str, deployment: Deployment, record: RequestRecord | None, *, fastest: bool = False
) -> JSONBytesResponse | ByteStreamResponse:
    headers = deployment_headers(label, deployment)
    if fastest:
        headers.append((b"x-llmplex-fastest-response", b"true"))
    if record is not None:
        headers.append((b"request-id", record.request_id.encode()))
        record.winner, record.deployment = label, deployment.model_id
        if answer.usage:
            prompt, completion = answer.usage.get("input_tokens", 0), answer.usage.get("output_tokens", 0)
            record.usage = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
    if answer.stream is not None:
        stream = answer.stream
        return ByteStreamResponse(aiter(stream), stream.close, _error_event, headers=headers, record=record)
    assert answer.body is not None
    return JSONBytesResponse(answer.body, headers)


def _error_event(exc: Exception) -> bytes:
    status = error_status(exc)
    name, payload = AnthropicStreamTranslator.error(status, str(error_dict(exc)["message"]))
    return encode_event(name, payload)
