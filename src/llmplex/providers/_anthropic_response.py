"""Anthropic ``message`` bodies -> OpenAI ``chat.completion`` (pure translation, no I/O)."""

from __future__ import annotations

from typing import Any

from llmplex.exceptions import StreamError
from llmplex.providers._chunks import arguments_json
from llmplex.types import ModelResponse

__all__ = ["JSON_TOOL_NAME", "finish_reason", "openai_usage", "parse_message"]

PROVIDER = "anthropic"
# The forced tool that carries JSON-mode output (LiteLLM's name, so replays look the same).
JSON_TOOL_NAME = "json_tool_call"

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any, *, has_tool_calls: bool) -> str:
    # tool calls decide, not the reason: a forced tool can end with end_turn
    if has_tool_calls:
        return "tool_calls"
    reason = _FINISH_REASONS.get(str(stop_reason), "stop")
    return "stop" if reason == "tool_calls" else reason


def openai_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Anthropic usage -> OpenAI usage. Anthropic's ``input_tokens`` excludes cache reads and writes."""
    cache_read = _int(usage.get("cache_read_input_tokens"))
    cache_write = _int(usage.get("cache_creation_input_tokens"))
    prompt = _int(usage.get("input_tokens")) + cache_read + cache_write
    completion = _int(usage.get("output_tokens"))
    result: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cache_read or cache_write:
        result["prompt_tokens_details"] = {"cached_tokens": cache_read}
        result["cache_read_input_tokens"] = cache_read
        result["cache_creation_input_tokens"] = cache_write
    return result


def parse_message(body: Any, *, json_mode: bool) -> ModelResponse:
    if not isinstance(body, dict) or not isinstance(body.get("content"), list):
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]
            raise StreamError(str(err.get("message")), provider=PROVIDER, body=body, type=_str(err.get("type")))
        raise StreamError("anthropic returned a body without content", provider=PROVIDER, body=body)
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in body["content"]:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use" and json_mode and block.get("name") == JSON_TOOL_NAME:
            texts.append(arguments_json(block.get("input") or {}))
        elif kind == "tool_use":
            arguments = arguments_json(block.get("input") or {})
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": arguments},
                }
            )
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking") or ""))
    usage = body.get("usage")
    response = ModelResponse.build(
        model=str(body.get("model") or ""),
        content="".join(texts) if texts else None,
        finish_reason=finish_reason(body.get("stop_reason"), has_tool_calls=bool(tool_calls)),
        tool_calls=tool_calls or None,
        usage=openai_usage(usage) if isinstance(usage, dict) else None,
        response_id=_str(body.get("id")),
    )
    if reasoning:
        response.choices[0].message["reasoning_content"] = "".join(reasoning)  # LiteLLM's non-standard field
    return response


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
