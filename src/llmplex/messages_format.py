"""The Anthropic Messages API at the edge: an Anthropic request in -> an OpenAI chat request, and the OpenAI
answer back -> an Anthropic message. Pure translation, no I/O (the stream is ``messages_stream``).

Request: ``system`` (string or text blocks) becomes a system message; text and image blocks become content
parts (base64 sources as data URLs); an assistant's ``tool_use`` blocks become ``tool_calls`` (``input`` as
JSON text); a user's ``tool_result`` blocks become ``tool`` messages placed before the rest of that turn;
``stop_sequences`` -> ``stop``, ``metadata.user_id`` -> ``user``, ``tool_choice`` and
``disable_parallel_tool_use`` -> ``tool_choice`` / ``parallel_tool_calls``, ``thinking`` -> ``reasoning_effort``
by budget. ``max_tokens`` is required, as by Anthropic. Thinking blocks in the history cannot be replayed to
another provider and are left out; server tools (blocks with a ``type``) and documents other than plain text
are refused with a ``MessagesFormatError`` (400).
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "ANTHROPIC_STOP_REASONS",
    "MessagesFormatError",
    "anthropic_error_body",
    "anthropic_error_type",
    "estimate_input_tokens",
    "openai_to_anthropic_response",
    "to_openai_request",
    "validate_messages_request",
]

# OpenAI finish_reason -> Anthropic stop_reason
ANTHROPIC_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# where thinking budgets fall in OpenAI's reasoning_effort levels
_EFFORT_BUDGETS = ((2048, "low"), (8192, "medium"))


class MessagesFormatError(ValueError):
    """A Messages request that is malformed or cannot be translated (the endpoint answers 400)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def anthropic_error_type(status: int) -> str:
    return _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def anthropic_error_body(status: int, message: str, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "error": {"type": anthropic_error_type(status), "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body


def validate_messages_request(body: Any, *, count_tokens: bool = False) -> dict[str, Any]:
    """The checks Anthropic makes before anything else (field names in its own wording)."""
    if not isinstance(body, dict):
        raise MessagesFormatError("request body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"].strip():
        raise MessagesFormatError("model: Field required", "model")
    if not count_tokens:
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            raise MessagesFormatError("max_tokens: Field required", "max_tokens")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise MessagesFormatError("max_tokens: Input should be a positive integer", "max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise MessagesFormatError("messages: Field required (a non-empty list)", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise MessagesFormatError(f"messages.{i}.role: Input should be 'user' or 'assistant'", "messages")
        content = message.get("content")
        if not isinstance(content, (str, list)):
            raise MessagesFormatError(f"messages.{i}.content: Input should be a string or a list", "messages")
    _check_optional_fields(body)
    return body


# optional top-level fields and the JSON types Anthropic accepts for them
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "stream": bool,
    "tools": list,
    "system": (str, list),
    "metadata": dict,
    "tool_choice": dict,
    "thinking": dict,
}


def _check_optional_fields(body: dict[str, Any]) -> None:
    for name, allowed in _FIELD_TYPES.items():
        value = body.get(name)
        if value is not None and not isinstance(value, allowed):
            raise MessagesFormatError(f"{name}: Input has the wrong type", name)
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise MessagesFormatError("stop_sequences: Input should be a list of strings", "stop_sequences")


def to_openai_request(body: dict[str, Any]) -> dict[str, Any]:
    """A validated Messages request -> the OpenAI chat request body (``model`` kept as given)."""
    messages: list[dict[str, Any]] = []
    system = _system_text(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for i, message in enumerate(body["messages"]):
        if message["role"] == "user":
            messages.extend(_user_messages(message["content"], i))
        else:
            messages.append(_assistant_message(message["content"], i))
    out: dict[str, Any] = {"model": body["model"], "messages": messages}
    if "max_tokens" in body:
        out["max_tokens"] = body["max_tokens"]
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            out[key] = body[key]
    stops = body.get("stop_sequences")
    if stops:
        out["stop"] = list(stops)
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool(tool, i) for i, tool in enumerate(tools)]
    _tool_choice(body.get("tool_choice"), out)
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens") or 0
        out["reasoning_effort"] = next((level for limit, level in _EFFORT_BUDGETS if budget <= limit), "high")
    return out


def _system_text(system: Any) -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n".join(b.get("text", "") for b in system if isinstance(b, dict) and b.get("type") == "text")
    raise MessagesFormatError("system: Input should be a string or a list of text blocks", "system")


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)]


def _user_messages(content: Any, index: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in _blocks(content):
        kind = block.get("type")
        if kind == "tool_result":
            tool_messages.append(
                {"role": "tool", "tool_call_id": str(block.get("tool_use_id", "")), "content": _result_text(block)}
            )
        elif kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block, index)}})
        elif kind == "document" and _document_text(block) is not None:
            parts.append({"type": "text", "text": _document_text(block)})
        else:
            raise MessagesFormatError(
                f"messages.{index}.content: block type {kind!r} cannot be sent to this model", "messages"
            )
    out = list(tool_messages)
    if parts:
        if all(p["type"] == "text" for p in parts):
            out.append({"role": "user", "content": "\n".join(p["text"] for p in parts)})
        else:
            out.append({"role": "user", "content": parts})
    return out


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        text = "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return f"Error: {text}" if block.get("is_error") else text


def _image_url(block: dict[str, Any], index: int) -> str:
    source = block.get("source")
    if isinstance(source, dict):
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            return f"data:{source.get('media_type', 'image/png')};base64,{source['data']}"
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return str(source["url"])
    raise MessagesFormatError(f"messages.{index}.content: image source must be base64 or url", "messages")


def _document_text(block: dict[str, Any]) -> str | None:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "text" and isinstance(source.get("data"), str):
        return str(source["data"])
    return None


def _assistant_message(content: Any, index: int) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in _blocks(content):
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": str(block.get("name", "")), "arguments": arguments}
            calls.append({"id": str(block.get("id", "")), "type": "function", "function": function})
        elif kind in ("thinking", "redacted_thinking"):
            continue  # signed for Anthropic only: no other provider can take them back
        else:
            raise MessagesFormatError(
                f"messages.{index}.content: block type {kind!r} cannot be sent to this model", "messages"
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool(tool: Any, index: int) -> dict[str, Any]:
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
        raise MessagesFormatError(f"tools.{index}.name: Field required", "tools")
    if tool.get("type") not in (None, "custom"):
        raise MessagesFormatError(f"tools.{index}: server tool {tool['type']!r} needs an Anthropic model", "tools")
    function: dict[str, Any] = {"name": tool["name"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


def _tool_choice(choice: Any, out: dict[str, Any]) -> None:
    if not isinstance(choice, dict):
        return
    kind = choice.get("type")
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False


def openai_to_anthropic_response(answer: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` body -> an Anthropic ``message`` (first choice)."""
    choices = answer.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or "toolu_" + str(len(content)),
                "name": function.get("name") or "",
                "input": parse_arguments(function.get("arguments")),
            }
        )
    return {
        "id": message_id(answer.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": anthropic_usage(answer.get("usage")),
    }


def message_id(openai_id: Any) -> str:
    text = str(openai_id or "")
    return text if text.startswith("msg_") else "msg_" + (text.removeprefix("chatcmpl-") or "llmplex")


def stop_reason(finish_reason: Any) -> str:
    return ANTHROPIC_STOP_REASONS.get(str(finish_reason), "end_turn")


def parse_arguments(arguments: Any) -> dict[str, Any]:
    """Tool-call arguments (JSON text) -> the ``input`` object; text that is no JSON object stays visible."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def anthropic_usage(usage: Any) -> dict[str, Any]:
    usage = usage if isinstance(usage, dict) else {}
    prompt = int(usage.get("prompt_tokens") or 0)
    details = usage.get("prompt_tokens_details")
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    return {
        "input_tokens": max(prompt - cached, 0),
        "output_tokens": int(usage.get("completion_tokens") or 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """``count_tokens`` for models without a counting endpoint: text length / 4 over system, messages, tools."""
    chars = len(_system_text(body.get("system")))
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += len(orjson.dumps(content))
    if body.get("tools"):
        chars += len(orjson.dumps(body["tools"]))
    return max(1, chars // 4 + 3 * len(body.get("messages") or ()))
