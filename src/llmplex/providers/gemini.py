"""Google Gemini API (AI Studio, ``generativelanguage`` v1beta): OpenAI chat <-> Gemini, no I/O.

``POST {base}/v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``.
The key travels in the ``x-goog-api-key`` header, never in the URL, so it cannot leak into logs
or error messages. Streams are ``data:``-only SSE with no ``[DONE]``: every event is a whole
``GenerateContentResponse`` carrying only new text, and the event with ``finishReason`` ends it.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from llmplex._sse import SSEEvent
from llmplex.exceptions import (
    APIStatusError,
    AuthenticationError,
    ContextWindowExceededError,
    StreamError,
)
from llmplex.providers._chunks import TranslatedStreamState, delta_chunk, event_object, role_delta, usage_chunk
from llmplex.providers._gemini_request import gemini_body
from llmplex.providers._gemini_response import block_reason, candidate_output, map_finish_reason, openai_usage
from llmplex.providers.base import (
    OPENAI_PARAMS,
    CompletionRequest,
    Endpoint,
    ErrorDetails,
    HTTPRequest,
    ProviderAdapter,
    StreamState,
)
from llmplex.types import ModelResponse, ModelResponseStream, new_completion_id

__all__ = ["GeminiAdapter"]

API_VERSION = "v1beta"


class GeminiStreamState(TranslatedStreamState):
    def __init__(self, model: str, include_usage: bool) -> None:
        super().__init__(model, include_usage)
        self.started: set[int] = set()  # candidates whose role chunk was sent
        self.tool_counts: dict[int, int] = {}  # candidate -> tool calls sent (the OpenAI tool index)
        self.done: set[int] = set()  # candidates that carried a finishReason
        self.usage: dict[str, Any] | None = None  # running totals: only the last one counts


class GeminiAdapter(ProviderAdapter):
    name = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com"
    api_key_env = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    supported_params = OPENAI_PARAMS - {
        "logit_bias",
        "user",
        "logprobs",
        "top_logprobs",
        "parallel_tool_calls",
        "reasoning_effort",
    }

    # --- request ---------------------------------------------------------------------------------

    def model_url(self, request: CompletionRequest, endpoint: Endpoint) -> str:
        base = endpoint.base_url.rstrip("/")
        if not base.endswith(("/v1beta", "/v1", "/v1alpha")):
            base += "/" + API_VERSION
        model = request.model.removeprefix("models/")
        method = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
        return f"{base}/models/{quote(model, safe='')}:{method}"

    def build_request(self, request: CompletionRequest, endpoint: Endpoint) -> HTTPRequest:
        headers: dict[str, str] = {}
        if endpoint.api_key:
            headers["x-goog-api-key"] = endpoint.api_key
        headers.update(endpoint.headers)
        if request.stream:
            headers["Accept"] = "text/event-stream"
        return HTTPRequest.post_json(self.model_url(request, endpoint), headers, gemini_body(request))

    # --- response --------------------------------------------------------------------------------

    def parse_response(self, body: Any, request: CompletionRequest) -> ModelResponse:
        if isinstance(body, list) and len(body) == 1:  # the array form of a one-event stream
            body = body[0]
        if not isinstance(body, dict):
            raise StreamError("gemini returned a body that is not an object", provider=self.name, body=body)
        if isinstance(body.get("error"), dict):
            details = self.parse_error(500, body)
            raise StreamError(details.message, provider=self.name, body=body, code=details.code)
        candidates = [c for c in body.get("candidates") or [] if isinstance(c, dict)]
        if not candidates and block_reason(body) is None:
            raise StreamError("gemini returned no candidates", provider=self.name, body=body)
        choices = []
        for position, candidate in enumerate(candidates):
            out = candidate_output(candidate, position)
            message: dict[str, Any] = {"role": "assistant", "content": out.text or (None if out.tool_calls else "")}
            if out.tool_calls:
                message["tool_calls"] = out.tool_calls
            if out.reasoning:
                message["reasoning_content"] = out.reasoning
            finish = map_finish_reason(out.finish_reason, bool(out.tool_calls))
            choices.append({"index": out.index, "message": message, "finish_reason": finish, "logprobs": None})
        if not choices:  # the prompt itself was blocked
            message = {"role": "assistant", "content": ""}
            choices.append({"index": 0, "message": message, "finish_reason": "content_filter", "logprobs": None})
        result: dict[str, Any] = {
            "id": str(body.get("responseId") or "") or new_completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("modelVersion") or request.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        usage = openai_usage(body.get("usageMetadata"))
        if usage is not None:
            result["usage"] = usage
        return ModelResponse.model_validate(result)

    # --- stream ----------------------------------------------------------------------------------

    def new_stream_state(self, request: CompletionRequest) -> StreamState:
        return GeminiStreamState(request.model, request.include_usage)

    def parse_event(self, event: SSEEvent, state: StreamState) -> list[ModelResponseStream]:
        assert isinstance(state, GeminiStreamState)
        data = event.data.strip()
        if not data:
            return []
        obj = event_object(data, self.name)
        if obj.get("error"):
            details = self.parse_error(500, obj)
            raise StreamError(details.message, provider=self.name, body=obj, code=details.code)
        if not state.response_id:
            state.response_id = str(obj.get("responseId") or "") or new_completion_id()
            state.model = str(obj.get("modelVersion") or state.model)
        if obj.get("usageMetadata"):
            state.usage = openai_usage(obj["usageMetadata"])
        candidates = [c for c in obj.get("candidates") or [] if isinstance(c, dict)]
        if not candidates and block_reason(obj) is not None:
            candidates = [{"index": 0, "finishReason": "PROHIBITED_CONTENT"}]  # blocked prompt: filtered
        chunks: list[ModelResponseStream] = []
        for position, candidate in enumerate(candidates):
            chunks.extend(_candidate_chunks(state, candidate, position))
        if state.done and state.done >= state.started:
            state.finished = True
            if state.include_usage and state.usage is not None:
                chunks.append(usage_chunk(state, state.usage))
        return chunks

    # --- errors ----------------------------------------------------------------------------------

    def parse_error(self, status: int, body: Any) -> ErrorDetails:
        if isinstance(body, list) and body:  # the array-streaming endpoint wraps errors in a list
            body = body[0]
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict):
            return super().parse_error(status, body)
        return ErrorDetails(message=str(err.get("message") or f"HTTP {status}"), code=_error_code(err))

    def refine_error_class(self, status: int, details: ErrorDetails) -> type[APIStatusError] | None:
        message = details.message.lower()
        if status == 400 and (details.code == "API_KEY_INVALID" or "api key not valid" in message):
            return AuthenticationError  # Gemini answers a bad key with 400; callers expect 401
        if status == 400 and "exceeds the maximum number of tokens" in message:
            return ContextWindowExceededError
        return super().refine_error_class(status, details)


def _error_code(err: dict[str, Any]) -> str | None:
    """The most specific code: an ``ErrorInfo.reason`` (e.g. API_KEY_INVALID), else the RPC status."""
    for detail in err.get("details") or []:
        if isinstance(detail, dict) and detail.get("reason"):
            return str(detail["reason"])
    status = err.get("status") or err.get("code")
    return None if status is None else str(status)


def _candidate_chunks(state: GeminiStreamState, candidate: dict[str, Any], position: int) -> list[ModelResponseStream]:
    out = candidate_output(candidate, position)
    chunks: list[ModelResponseStream] = []
    index = out.index
    if index not in state.started:
        state.started.add(index)
        chunks.append(delta_chunk(state, role_delta(), index=index))
    delta: dict[str, Any] = {}
    if out.reasoning:
        delta["reasoning_content"] = out.reasoning
    if out.text:
        delta["content"] = out.text
    if out.tool_calls:
        first = state.tool_counts.get(index, 0)
        delta["tool_calls"] = [{"index": first + n, **call} for n, call in enumerate(out.tool_calls)]
        state.tool_counts[index] = first + len(out.tool_calls)
    if delta:
        chunks.append(delta_chunk(state, delta, index=index))
    if out.finish_reason and index not in state.done:
        state.done.add(index)
        finish = map_finish_reason(out.finish_reason, state.tool_counts.get(index, 0) > 0)
        chunks.append(delta_chunk(state, {}, finish, index=index))
    return chunks
