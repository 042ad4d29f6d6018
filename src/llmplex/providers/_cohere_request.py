"""Cohere v2 request side: OpenAI messages, tools and options -> the ``/v2/chat`` body. Pure."""

from __future__ import annotations

from typing import Any

from llmplex.exceptions import BadRequestError
from llmplex.providers._chunks import arguments_json
from llmplex.providers.base import CompletionRequest

__all__ = ["cohere_body", "text_of", "tool_call"]


# OpenAI params sent under another name
_RENAMED: dict[str, str] = {
    "temperature": "temperature",
    "top_p": "p",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}


def cohere_body(request: CompletionRequest) -> dict[str, Any]:
    """The ``/v2/chat`` body for an OpenAI-shaped request."""
    params = request.params
    body: dict[str, Any] = {"model": request.model, "messages": [_message(m) for m in request.messages]}
    for key, target in _RENAMED.items():
        if key in params:
            body[target] = params[key]
    max_tokens = params.get("max_completion_tokens", params.get("max_tokens"))
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    stop = params.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if "tools" in params:
        body["tools"] = [_tool(t) for t in params["tools"]]
    if "tool_choice" in params:
        _apply_tool_choice(body, params["tool_choice"])
    if "response_format" in params:
        fmt = _response_format(params["response_format"])
        if fmt is not None:
            body["response_format"] = fmt
    if request.stream:
        body["stream"] = True
    extra = dict(request.extra)
    if "top_k" in extra:  # LiteLLM's spelling of Cohere's k
        body["k"] = extra.pop("top_k")
    body.update(extra)
    return body


# --- messages -----------------------------------------------------------------------------


def _message(message: dict[str, Any]) -> dict[str, Any]:
    role = message.get("role")
    content = message.get("content")
    if role in ("system", "developer"):
        return {"role": "system", "content": text_of(content)}
    if role == "user":
        return {"role": "user", "content": _user_content(content)}
    if role == "assistant":
        return _assistant_message(message)
    if role in ("tool", "function"):
        call_id = message.get("tool_call_id") or message.get("name") or ""
        return {"role": "tool", "tool_call_id": call_id, "content": text_of(content)}
    raise BadRequestError(f"cohere cannot take a message with role {role!r}", param="messages")


def _user_content(content: Any) -> Any:
    if not isinstance(content, list):
        return "" if content is None else str(content)
    parts: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, dict):
            parts.append({"type": "text", "text": str(part)})
        elif part.get("type") == "text":
            parts.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            parts.append({"type": "image_url", "image_url": part.get("image_url")})
        else:
            raise BadRequestError(f"cohere cannot take a {part.get('type')!r} content part", param="messages")
    return parts


def _assistant_message(message: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant"}
    text = text_of(message.get("content"))
    calls = message.get("tool_calls") or []
    if calls:
        out["tool_calls"] = [tool_call(c) for c in calls]
        if text:
            out["tool_plan"] = text  # Cohere's place for the text that goes with tool calls
    else:
        out["content"] = text
    return out


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
    out: dict[str, Any] = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("parameters") is not None:
        out["parameters"] = function["parameters"]
    return {"type": "function", "function": out}


def _apply_tool_choice(body: dict[str, Any], choice: Any) -> None:
    if choice == "required":
        body["tool_choice"] = "REQUIRED"
    elif choice == "none":
        body["tool_choice"] = "NONE"
    elif isinstance(choice, dict):
        # v2 cannot force a named function: offer only that tool and require a call
        name = (choice.get("function") or {}).get("name")
        body["tools"] = [t for t in body.get("tools", []) if t["function"]["name"] == name]
        if not body["tools"]:
            raise BadRequestError(f"tool_choice names {name!r}, which is not in tools", param="tool_choice")
        body["tool_choice"] = "REQUIRED"
    # "auto" is Cohere's default and has no spelling


def _response_format(fmt: Any) -> dict[str, Any] | None:
    if not isinstance(fmt, dict):
        return None
    kind = fmt.get("type")
    if kind == "json_object":
        out: dict[str, Any] = {"type": "json_object"}
        if isinstance(fmt.get("schema"), dict):
            out["json_schema"] = fmt["schema"]
        return out
    if kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        return {"type": "json_object", "json_schema": schema} if schema else {"type": "json_object"}
    return {"type": "text"} if kind == "text" else None


# --- response helpers ----------------------------------------------------------------------------


def text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type", "text") == "text"]
        return "".join(texts)
    return str(content)


def tool_call(call: dict[str, Any]) -> dict[str, Any]:
    """One OpenAI-shaped call (the same shape both ways); arguments always a JSON string."""
    function = call.get("function") or {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = arguments_json(arguments)
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {"name": function.get("name"), "arguments": arguments},
    }
