"""``POST /v1/completions``, ``/completions``, ``/openai/deployments/{model}/completions``: OpenAI's legacy
text completions through the router; native ``/completions`` where the deployment serves it, else through
chat (see ``llmplex.text_completions``). ``stream: true`` answers with ``text_completion`` chunks and
``data: [DONE]``; a failure after the stream started is one ``data: {"error": ...}`` event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from llmplex._sse import encode_data, encode_done
from llmplex.client import AsyncClient
from llmplex.endpoint_types import TextCompletionResponse
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
from llmplex.proxy.errors import ProxyError, error_event, error_response
from llmplex.proxy.params import check_params
from llmplex.proxy.request import CONTROL_FIELDS
from llmplex.proxy.routes import JSONBytesResponse, ProxyState
from llmplex.text_completions import TextCompletionStream

__all__ = ["AZURE_COMPLETIONS_PATH", "completions"]

AZURE_COMPLETIONS_PATH = "/openai/deployments/{model}/completions"


async def completions(request: Request) -> Response | JSONBytesResponse | ByteStreamResponse:
    record = record_of(request)
    labels: list[str] = []
    try:
        state, client, body = await json_body(request)
        path_model = request.path_params.get("model")
        if record is not None and path_model is not None:
            record.route = AZURE_COMPLETIONS_PATH
        labels = model_labels(path_model or body.pop("model", None), state.config.default_model)
        body.pop("model", None)
        prompt = _check(body)
        if len(labels) != 1:
            raise ProxyError(400, "/completions takes one model", param="model")
        group = group_of(state, labels[0])
        if record is not None:
            record.models, record.model, record.stream = labels, labels[0], bool(body.get("stream"))
        admitted = await key_admit(request, state, labels, record)
        work = _answer(state, client, labels[0], group, prompt, body, record)
        answer = await until_disconnect(work, request.receive, _release)
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
    if "prompt" not in body:
        raise ProxyError(400, "Missing required parameter: 'prompt'", param="prompt")
    prompt = body.pop("prompt")
    ok = isinstance(prompt, str) or (
        isinstance(prompt, list)
        and bool(prompt)
        and (
            all(isinstance(p, str) for p in prompt)
            or all(isinstance(p, int) and not isinstance(p, bool) for p in prompt)
            or all(isinstance(p, list) and p and all(isinstance(t, int) for t in p) for p in prompt)
        )
    )
    if not ok:
        raise ProxyError(400, "'prompt' must be a string, an array of strings, or token arrays", param="prompt")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise ProxyError(400, "'stream' must be true or false", param="stream")
    check_params({k: v for k, v in body.items() if k != "logprobs"})  # an integer here, a boolean in chat
    return prompt


def _release(answer: Response | JSONBytesResponse | ByteStreamResponse) -> None:
    if isinstance(answer, ByteStreamResponse):
        answer.close()


async def _answer(
    state: ProxyState,
    client: AsyncClient,
    label: str,
    group: str,
    prompt: Any,
    options: dict[str, Any],
    record: RequestRecord | None,
) -> JSONBytesResponse | ByteStreamResponse:
    async def send(settings: Mapping[str, Any], model: str) -> TextCompletionResponse | TextCompletionStream:
        result = await client.text_completion(prompt, model, **{**settings, **options})
        assert isinstance(result, (TextCompletionResponse, TextCompletionStream))
        return result

    def stats(result: TextCompletionResponse | TextCompletionStream) -> tuple[int, bool]:
        if isinstance(result, TextCompletionStream):
            return 0, False
        return (result.usage.total_tokens if result.usage else 0), True

    result, deployment = await routed(state, group, send, stats)
    headers = deployment_headers(label, deployment)
    if record is not None:
        record.deployment = deployment.model_id
        usage = None if isinstance(result, TextCompletionStream) else result.usage
        if usage is not None:  # what a virtual key's spend is priced from (a stream's is not known here)
            record.usage = {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            }
    if isinstance(result, TextCompletionStream):
        return ByteStreamResponse(_chunks(result), result.close, error_event, headers=headers, tail=encode_done())
    return JSONBytesResponse(result.json_bytes(), headers)


async def _chunks(stream: TextCompletionStream) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield encode_data(chunk.json_bytes())
