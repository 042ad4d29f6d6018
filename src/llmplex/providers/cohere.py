"""Cohere Chat API v2 (``POST /v2/chat``): OpenAI chat <-> Cohere v2 translation, no I/O.

v2 messages are OpenAI-like (system inline, ``tool_calls`` with JSON-string arguments, ``tool``
messages), but parameters are renamed (``p``, ``stop_sequences``), ``tool_choice`` only knows
``REQUIRED``/``NONE``, and the stream uses named events ending with ``message-end`` (no ``[DONE]``).
"""

from __future__ import annotations

from typing import Any

from llmplex._sse import SSEEvent
from llmplex.exceptions import APIStatusError, AuthenticationError, ContextWindowExceededError, StreamError
from llmplex.providers._chunks import TranslatedStreamState, delta_chunk, event_object, role_delta, usage_chunk
from llmplex.providers._cohere_request import cohere_body, text_of, tool_call
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

__all__ = ["CohereAdapter", "map_finish_reason"]

_FINISH_REASONS: dict[str, str] = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR_TOXIC": "content_filter",
    "ERROR_LIMIT": "length",
    "ERROR": "stop",
    "TIMEOUT": "stop",
    "USER_CANCEL": "stop",
}


def map_finish_reason(reason: Any, has_tool_calls: bool = False) -> str:
    if has_tool_calls:
        return "tool_calls"
    return _FINISH_REASONS.get(str(reason or "").upper(), "stop")


class CohereStreamState(TranslatedStreamState):
    def __init__(self, model: str, include_usage: bool) -> None:
        super().__init__(model, include_usage)
        self.response_id = new_completion_id()
        # Cohere's content index -> our tool-call index (Cohere counts text blocks too)
        self.tool_indexes: dict[int, int] = {}


class CohereAdapter(ProviderAdapter):
    name = "cohere"
    default_base_url = "https://api.cohere.com"
    api_key_env = ("COHERE_API_KEY", "CO_API_KEY")
    supported_params = OPENAI_PARAMS - {
        "n",
        "logit_bias",
        "user",
        "logprobs",
        "top_logprobs",
        "parallel_tool_calls",
        "reasoning_effort",
    }

    # --- request ---------------------------------------------------------------------------------

    def chat_url(self, endpoint: Endpoint) -> str:
        base = endpoint.base_url.rstrip("/")
        if base.endswith("/v2/chat"):
            return base
        for suffix in ("/v1", "/v2"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        return base + "/v2/chat"

    def build_request(self, request: CompletionRequest, endpoint: Endpoint) -> HTTPRequest:
        headers: dict[str, str] = {}
        if endpoint.api_key:
            headers["Authorization"] = f"Bearer {endpoint.api_key}"
        headers.update(endpoint.headers)
        if request.stream:
            headers["Accept"] = "text/event-stream"
        return HTTPRequest.post_json(self.chat_url(endpoint), headers, cohere_body(request))

    # --- response --------------------------------------------------------------------------------

    def parse_response(self, body: Any, request: CompletionRequest) -> ModelResponse:
        if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
            raise StreamError("cohere returned a body without a message", provider=self.name, body=body)
        message = body["message"]
        tool_calls = [tool_call(c) for c in message.get("tool_calls") or [] if isinstance(c, dict)]
        text = text_of(message.get("content"))
        return ModelResponse.build(
            model=request.model,
            content=text if text or not tool_calls else None,
            finish_reason=map_finish_reason(body.get("finish_reason"), bool(tool_calls)),
            tool_calls=tool_calls or None,
            usage=_usage(body.get("usage")),
            response_id=str(body.get("id") or "") or None,
        )

    # --- stream ----------------------------------------------------------------------------------

    def new_stream_state(self, request: CompletionRequest) -> StreamState:
        return CohereStreamState(request.model, request.include_usage)

    def parse_event(self, event: SSEEvent, state: StreamState) -> list[ModelResponseStream]:
        assert isinstance(state, CohereStreamState)
        data = event.data.strip()
        if not data:
            return []
        if data.startswith("[DONE]"):
            state.finished = True
            return []
        obj = event_object(data, self.name)
        kind = obj.get("type") or event.event
        if not kind:
            # every Cohere event is typed; an untyped object is an error body sent inside the stream
            message = obj.get("message") or obj.get("error") or data[:200]
            raise StreamError(str(message), provider=self.name, body=obj)
        handler = _STREAM_HANDLERS.get(str(kind))
        return handler(obj, state) if handler is not None else []

    # --- errors ----------------------------------------------------------------------------------

    def parse_error(self, status: int, body: Any) -> ErrorDetails:
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return ErrorDetails(message=body["message"], code=_opt_str(body.get("id")))
        return super().parse_error(status, body)

    def refine_error_class(self, status: int, details: ErrorDetails) -> type[APIStatusError] | None:
        if status == 498:  # Cohere's InvalidTokenError
            return AuthenticationError
        if status == 400 and "too many tokens" in details.message.lower():
            return ContextWindowExceededError
        return super().refine_error_class(status, details)


def _usage(usage: Any) -> dict[str, int] | None:
    if not isinstance(usage, dict):
        return None
    counts = usage.get("tokens") or usage.get("billed_units")
    if not isinstance(counts, dict):
        return None
    prompt = int(counts.get("input_tokens") or 0)
    completion = int(counts.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


# --- stream helpers ------------------------------------------------------------------------------


def _delta_message(obj: dict[str, Any]) -> dict[str, Any]:
    delta = obj.get("delta")
    message = delta.get("message") if isinstance(delta, dict) else None
    return message if isinstance(message, dict) else {}


def _on_message_start(obj: dict[str, Any], state: CohereStreamState) -> list[ModelResponseStream]:
    if obj.get("id"):
        state.response_id = str(obj["id"])
    return [delta_chunk(state, role_delta())]


def _on_content(obj: dict[str, Any], state: CohereStreamState) -> list[ModelResponseStream]:
    content = _delta_message(obj).get("content")
    text = content.get("text") if isinstance(content, dict) else None
    return [delta_chunk(state, {"content": text})] if text else []


def _on_tool_call_start(obj: dict[str, Any], state: CohereStreamState) -> list[ModelResponseStream]:
    call = _delta_message(obj).get("tool_calls")
    if isinstance(call, list):  # documented as one object; tolerate a list of one
        call = call[0] if call else None
    if not isinstance(call, dict):
        return []
    index = len(state.tool_indexes)
    state.tool_indexes[_int(obj.get("index"), index)] = index
    function = call.get("function") or {}
    fragment = {
        "index": index,
        "id": call.get("id") or f"call_{state.response_id}_{index}",
        "type": "function",
        "function": {"name": function.get("name"), "arguments": function.get("arguments") or ""},
    }
    return [delta_chunk(state, {"tool_calls": [fragment]})]


def _on_tool_call_delta(obj: dict[str, Any], state: CohereStreamState) -> list[ModelResponseStream]:
    call = _delta_message(obj).get("tool_calls")
    if isinstance(call, list):
        call = call[0] if call else None
    arguments = ((call or {}).get("function") or {}).get("arguments") if isinstance(call, dict) else None
    if not arguments or not state.tool_indexes:
        return []
    index = state.tool_indexes.get(_int(obj.get("index"), -1), len(state.tool_indexes) - 1)
    return [delta_chunk(state, {"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})]


def _on_message_end(obj: dict[str, Any], state: CohereStreamState) -> list[ModelResponseStream]:
    delta = obj.get("delta") if isinstance(obj.get("delta"), dict) else {}
    assert isinstance(delta, dict)
    error = delta.get("error")
    if error:
        raise StreamError(str(error), provider="cohere", body=obj)
    state.finished = True
    finish = map_finish_reason(delta.get("finish_reason"), bool(state.tool_indexes))
    chunks = [delta_chunk(state, {}, finish)]
    usage = _usage(delta.get("usage"))
    if state.include_usage and usage is not None:
        chunks.append(usage_chunk(state, usage))
    return chunks


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) else default


_STREAM_HANDLERS = {
    "message-start": _on_message_start,
    "content-start": _on_content,
    "content-delta": _on_content,
    "tool-call-start": _on_tool_call_start,
    "tool-call-delta": _on_tool_call_delta,
    "message-end": _on_message_end,
    # content-end, tool-plan-delta, tool-call-end, citation-*, debug: nothing to emit
}
