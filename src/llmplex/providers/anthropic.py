"""Anthropic Messages API (``POST /v1/messages``): OpenAI chat requests in, OpenAI shapes out.

Pure translation, no I/O. Messages are converted in ``_anthropic_messages``, bodies in
``_anthropic_response`` and SSE events in ``_anthropic_stream``; this module owns the request
parameters, the endpoint, and error mapping.
"""

from __future__ import annotations

from typing import Any

from llmplex._sse import SSEEvent
from llmplex.exceptions import (
    APIStatusError,
    BadRequestError,
    ContextWindowExceededError,
    ServiceUnavailableError,
    UnsupportedParamsError,
)
from llmplex.providers._anthropic_messages import convert_messages
from llmplex.providers._anthropic_response import JSON_TOOL_NAME, parse_message
from llmplex.providers._anthropic_stream import AnthropicStreamState, parse_stream_event
from llmplex.providers.base import (
    OPENAI_PARAMS,
    CompletionRequest,
    Endpoint,
    ErrorDetails,
    HTTPRequest,
    ProviderAdapter,
    StreamState,
    openai_error_details,
)
from llmplex.types import ModelResponse, ModelResponseStream

__all__ = ["AnthropicAdapter"]

API_VERSION = "2023-06-01"
# Anthropic requires max_tokens; LiteLLM's default, so switching callers see the same behaviour.
DEFAULT_MAX_TOKENS = 4096
# reasoning_effort -> thinking budget (LiteLLM's presets)
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}
# OpenAI params Anthropic has no equivalent for: rejected (or dropped with drop_params) before sending.
UNSUPPORTED = frozenset(
    {"n", "presence_penalty", "frequency_penalty", "logit_bias", "seed", "logprobs", "top_logprobs"}
)
_PASSTHROUGH = ("temperature", "top_p")


class AnthropicAdapter(ProviderAdapter):
    name = "anthropic"
    default_base_url = "https://api.anthropic.com"
    api_key_env = ("ANTHROPIC_API_KEY",)
    supported_params = OPENAI_PARAMS - UNSUPPORTED

    def messages_url(self, endpoint: Endpoint) -> str:
        base = endpoint.base_url.rstrip("/")
        return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"

    def build_request(self, request: CompletionRequest, endpoint: Endpoint) -> HTTPRequest:
        headers = {"anthropic-version": API_VERSION}
        if endpoint.api_key:
            headers["x-api-key"] = endpoint.api_key
        if request.stream:
            headers["Accept"] = "text/event-stream"
        headers.update(endpoint.headers)
        return HTTPRequest.post_json(self.messages_url(endpoint), headers, self.build_body(request))

    def build_body(self, request: CompletionRequest) -> dict[str, Any]:
        params = request.params
        system, turns = convert_messages(request.messages)
        body: dict[str, Any] = {"model": request.model, "messages": turns}
        if system:
            body["system"] = _system_field(system)
        body["max_tokens"] = params.get("max_completion_tokens") or params.get("max_tokens") or DEFAULT_MAX_TOKENS
        for key in _PASSTHROUGH:
            if key in params:
                body[key] = params[key]
        if "stop" in params:
            body["stop_sequences"] = _stop_sequences(params["stop"])
        if params.get("user"):
            body["metadata"] = {"user_id": str(params["user"])}
        _apply_tools(body, params)
        _apply_response_format(body, params)
        _apply_reasoning(body, params)
        if request.stream:
            body["stream"] = True
        body.update(request.extra)
        return body

    def parse_response(self, body: Any, request: CompletionRequest) -> ModelResponse:
        return parse_message(body, json_mode=_json_mode(request.params))

    def new_stream_state(self, request: CompletionRequest) -> StreamState:
        return AnthropicStreamState(
            request.model, include_usage=request.include_usage, json_mode=_json_mode(request.params)
        )

    def parse_event(self, event: SSEEvent, state: StreamState) -> list[ModelResponseStream]:
        assert isinstance(state, AnthropicStreamState)
        return parse_stream_event(event, state)

    def parse_error(self, status: int, body: Any) -> ErrorDetails:
        """``{"type": "error", "error": {"type", "message"}, "request_id"}``; OpenAI-style as fallback."""
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]
            if "message" in err and "code" not in err:
                kind = err.get("type")
                return ErrorDetails(message=str(err.get("message") or f"HTTP {status}"), type=_opt(kind))
        return openai_error_details(status, body)

    def refine_error_class(self, status: int, details: ErrorDetails) -> type[APIStatusError] | None:
        if status == 529 or details.type == "overloaded_error":
            return ServiceUnavailableError
        if status in (400, 413) and "prompt is too long" in details.message.lower():
            return ContextWindowExceededError
        return super().refine_error_class(status, details)


def _system_field(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    # a plain string unless a block carries something a string cannot (cache_control, images)
    if all(block.get("type") == "text" and set(block) == {"type", "text"} for block in blocks):
        return "\n\n".join(str(block["text"]) for block in blocks)
    return blocks


def _stop_sequences(stop: Any) -> list[str]:
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        return list(stop)
    raise BadRequestError("stop must be a string or a list of strings", provider="anthropic", param="stop")


def _apply_tools(body: dict[str, Any], params: dict[str, Any]) -> None:
    tools = params.get("tools")
    if tools:
        body["tools"] = [_tool(tool) for tool in tools]
    choice = _tool_choice(params.get("tool_choice"))
    if params.get("parallel_tool_calls") is False and (choice is None or choice["type"] != "none"):
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if choice is not None and (tools or choice["type"] == "none"):
        body["tool_choice"] = choice


def _tool(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise BadRequestError("each tool must be an object", provider="anthropic", param="tools")
    if tool.get("type") != "function":
        return dict(tool)  # an Anthropic-native tool (server tools, already translated tools)
    function = tool.get("function") or {}
    if not function.get("name"):
        raise BadRequestError("function tools need function.name", provider="anthropic", param="tools")
    result: dict[str, Any] = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        result["description"] = function["description"]
    if "cache_control" in tool:
        result["cache_control"] = tool["cache_control"]
    return result


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        mapped = {"auto": "auto", "required": "any", "any": "any", "none": "none"}.get(choice)
        if mapped is not None:
            return {"type": mapped}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
        if name:
            return {"type": "tool", "name": name}
        if choice.get("type") in ("auto", "any", "tool", "none"):
            return dict(choice)  # already Anthropic-shaped
    raise BadRequestError(f"unsupported tool_choice {choice!r}", provider="anthropic", param="tool_choice")


def _json_mode(params: dict[str, Any]) -> bool:
    response_format = params.get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema")


def _apply_response_format(body: dict[str, Any], params: dict[str, Any]) -> None:
    """JSON mode via a forced tool whose input is the answer (what LiteLLM does)."""
    response_format = params.get("response_format")
    if not _json_mode(params):
        if isinstance(response_format, dict) and response_format.get("type") not in (None, "text"):
            raise UnsupportedParamsError(
                f"anthropic does not support response_format type {response_format.get('type')!r}",
                provider="anthropic",
                param="response_format",
            )
        return
    assert isinstance(response_format, dict)
    if params.get("tools"):
        raise UnsupportedParamsError(
            "anthropic cannot combine tools with response_format JSON mode (JSON mode uses a forced tool)",
            provider="anthropic",
            param="response_format",
        )
    schema = (response_format.get("json_schema") or {}).get("schema")
    if not isinstance(schema, dict):
        schema = {"type": "object", "additionalProperties": True, "properties": {}}
    body["tools"] = [{"name": JSON_TOOL_NAME, "description": "Respond with a JSON object.", "input_schema": schema}]
    body["tool_choice"] = {"type": "tool", "name": JSON_TOOL_NAME}


def _apply_reasoning(body: dict[str, Any], params: dict[str, Any]) -> None:
    effort = params.get("reasoning_effort")
    if effort is None or effort == "none":
        return
    budget = THINKING_BUDGETS.get(str(effort))
    if budget is None:
        raise BadRequestError(f"unknown reasoning_effort {effort!r}", provider="anthropic", param="reasoning_effort")
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if body.get("tool_choice", {}).get("name") == JSON_TOOL_NAME:
        body["tool_choice"] = {"type": "auto"}  # extended thinking refuses a forced tool
    if not (params.get("max_completion_tokens") or params.get("max_tokens")):
        body["max_tokens"] = budget + DEFAULT_MAX_TOKENS  # the budget must stay below max_tokens


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)
