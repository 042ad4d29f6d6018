"""``POST /v1/embeddings``, ``/embeddings``, ``/openai/deployments/{model}/embeddings`` (OpenAI's shape).

Checked before any upstream call: a non-empty ``input`` (a string, strings, or token arrays), a known
``encoding_format`` ("float" / "base64"), a positive integer ``dimensions``. The call goes through the
router (retries, fallbacks, rpm/tpm); a long input list is split by the SDK per the provider's limits.
``"model": "a, b"`` (or a list) answers with a JSON array in model order, a failed model's slot holding
its OpenAI-format error.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from llmplex._concurrency import gather_settled
from llmplex._embedding_call import ENCODING_FORMATS, normalize_input
from llmplex.client import AsyncClient
from llmplex.endpoint_types import EmbeddingResponse
from llmplex.exceptions import AllModelsFailedError, BadRequestError
from llmplex.proxy.access_log import RequestRecord, record_of
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
from llmplex.proxy.errors import ProxyError, error_response, slot_error
from llmplex.proxy.request import CONTROL_FIELDS
from llmplex.proxy.routes import JSONBytesResponse, ProxyState

__all__ = ["AZURE_EMBEDDINGS_PATH", "embeddings"]

AZURE_EMBEDDINGS_PATH = "/openai/deployments/{model}/embeddings"
# SDK keywords that steer the caller's own process (files, progress bars, pacing): not settable through the proxy
_SDK_ONLY = ("checkpoint", "progress", "max_concurrency", "rpm", "tpm", "return_exceptions")


async def embeddings(request: Request) -> Response | JSONBytesResponse:
    record = record_of(request)
    labels: list[str] = []
    try:
        state, client, body = await json_body(request)
        path_model = request.path_params.get("model")
        if record is not None and path_model is not None:
            record.route = AZURE_EMBEDDINGS_PATH
        labels = model_labels(path_model or body.pop("model", None), state.config.default_model)
        body.pop("model", None)
        inputs = _check(body)
        groups = [group_of(state, label) for label in labels]
        if record is not None:
            record.models = labels
            record.model = labels[0] if len(labels) == 1 else "multi"
        admitted = await key_admit(request, state, labels, record)
        work = _answer(state, client, labels, groups, inputs, body, record)
        answer = await until_disconnect(work, request.receive)
        answer.raw_headers += key_headers(state, admitted, record)
        return answer
    except ClientDisconnected:
        return Response(status_code=499)
    except Exception as exc:
        if record is not None:
            record.error = type(exc).__name__
        return error_response(exc, labels)


def _check(body: dict[str, Any]) -> Any:
    strip_fields(body)
    for key in CONTROL_FIELDS:
        body.pop(key, None)
    for key in _SDK_ONLY:
        if key in body:
            raise ProxyError(400, f"'{key}' is an SDK setting, not a request parameter", param=key)
    if "input" not in body:
        raise ProxyError(400, "Missing required parameter: 'input'", param="input")
    inputs = body.pop("input")
    try:
        normalize_input(inputs)
    except BadRequestError as exc:
        raise ProxyError(400, exc.message, param="input") from None
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ENCODING_FORMATS:
        raise ProxyError(
            400, f"'encoding_format' must be 'float' or 'base64', got {encoding!r}", param="encoding_format"
        )
    dimensions = body.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
        raise ProxyError(400, "'dimensions' must be a positive integer", param="dimensions")
    return inputs


async def _answer(
    state: ProxyState,
    client: AsyncClient,
    labels: list[str],
    groups: list[str],
    inputs: Any,
    options: dict[str, Any],
    record: RequestRecord | None,
) -> Response | JSONBytesResponse:
    async def send(settings: Mapping[str, Any], model: str) -> EmbeddingResponse:
        result = await client.embedding(model, inputs, **{**settings, **options})
        assert isinstance(result, EmbeddingResponse)
        return result

    def stats(result: EmbeddingResponse) -> tuple[int, bool]:
        return (result.usage.prompt_tokens if result.usage else 0), True

    if len(groups) == 1:
        response, deployment = await routed(state, groups[0], send, stats)
        if record is not None:  # what a virtual key's spend is priced from (keys/charge.py)
            tokens = response.usage.prompt_tokens if response.usage else 0
            record.deployment = deployment.model_id
            record.usage = {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}
        return JSONBytesResponse(response.json_bytes(), deployment_headers(labels[0], deployment))
    results = await gather_settled([functools.partial(routed, state, g, send, stats) for g in groups])
    errors = [r for r in results if isinstance(r, Exception)]
    if len(errors) == len(results):
        raise AllModelsFailedError("all models failed", errors)
    parts = [orjson.dumps(slot_error(r)) if isinstance(r, BaseException) else r[0].json_bytes() for r in results]
    return Response(b"[" + b",".join(parts) + b"]", media_type="application/json")
