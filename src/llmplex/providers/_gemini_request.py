"""Gemini request side: OpenAI messages, tools and options -> a ``generateContent`` body. Pure.

Gemini wants ``user``/``model`` turns (system text goes to ``systemInstruction``), consecutive
same-role turns merged, tool results as ``functionResponse`` parts naming the function, and
tool schemas in an OpenAPI subset (no ``additionalProperties``, ``$schema``, ``strict``).
"""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from llmplex.exceptions import BadRequestError
from llmplex.providers.base import CompletionRequest

__all__ = ["THOUGHT_SEPARATOR", "clean_schema", "gemini_body"]

# A functionCall's thoughtSignature rides inside the OpenAI tool-call id so that it round-trips
# through a stateless client (Gemini rejects multi-turn tool use without it).
THOUGHT_SEPARATOR = "__thought__"

_UNSUPPORTED_SCHEMA_KEYS = frozenset({"$schema", "$id", "$comment", "additionalProperties", "strict"})

_GENERATION_PARAMS: dict[str, str] = {
    "temperature": "temperature",
    "top_p": "topP",
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}

_TOOL_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


def gemini_body(request: CompletionRequest) -> dict[str, Any]:
    """The ``generateContent`` body for an OpenAI-shaped request."""
    system, contents = _contents(request.messages)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    params = request.params
    if params.get("tools"):
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in params["tools"]]}]
    if "tool_choice" in params:
        body["toolConfig"] = {"functionCallingConfig": _tool_config(params["tool_choice"])}
    extra = dict(request.extra)
    config = _generation_config(params, extra)
    if config:
        body["generationConfig"] = config
    body.update(extra)
    return body


# --- messages ------------------------------------------------------------------------------------


def _contents(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}  # tool_call_id -> function name, for functionResponse
    for i, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(p for p in _parts(message.get("content"), i) if "text" in p)
            continue
        if role == "assistant":
            turn, parts = "model", _assistant_parts(message, call_names, i)
        elif role in ("tool", "function"):
            turn, parts = "user", [_function_response(message, call_names, i)]
        else:
            turn, parts = "user", _parts(message.get("content"), i)
        if not parts:
            continue
        if contents and contents[-1]["role"] == turn:
            contents[-1]["parts"].extend(parts)  # Gemini wants alternating turns
        else:
            contents.append({"role": turn, "parts": parts})
    return system, contents


def _parts(content: Any, i: int) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        return [{"text": str(content)}]
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            parts.append({"text": part})
            continue
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"text": part.get("text") or ""})
        elif kind == "image_url":
            image = part.get("image_url")
            parts.append(_media_part(image.get("url") if isinstance(image, dict) else image, i))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            parts.append({"inlineData": {"mimeType": f"audio/{audio.get('format', 'wav')}", "data": audio.get("data")}})
        elif kind == "file":
            file = part.get("file") or {}
            parts.append(_media_part(file.get("file_data") or file.get("file_id"), i))
        else:
            raise BadRequestError(f"messages[{i}]: gemini cannot take a {kind!r} content part", param="messages")
    return parts


def _media_part(url: Any, i: int) -> dict[str, Any]:
    if not isinstance(url, str) or not url:
        raise BadRequestError(f"messages[{i}]: a media part needs a URL", param="messages")
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        if not sep or not header.endswith(";base64"):
            raise BadRequestError(f"messages[{i}]: only base64 data URLs are supported", param="messages")
        return {"inlineData": {"mimeType": header[: -len(";base64")] or "application/octet-stream", "data": data}}
    mime = mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _assistant_parts(message: dict[str, Any], call_names: dict[str, str], i: int) -> list[dict[str, Any]]:
    parts = [p for p in _parts(message.get("content"), i) if p.get("text") != ""]
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        name = function.get("name")
        call_id = str(call.get("id") or "")
        if call_id and name:
            call_names[call_id] = name
        part: dict[str, Any] = {"functionCall": {"name": name, "args": _arguments(function.get("arguments"), i)}}
        _, sep, signature = call_id.partition(THOUGHT_SEPARATOR)
        if sep and signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _arguments(arguments: Any, i: int) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    try:
        parsed = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        raise BadRequestError(
            f"messages[{i}]: tool call arguments are not valid JSON: {str(arguments)[:100]!r}", param="messages"
        ) from None
    if not isinstance(parsed, dict):
        raise BadRequestError(f"messages[{i}]: tool call arguments must be a JSON object", param="messages")
    return parsed


def _function_response(message: dict[str, Any], call_names: dict[str, str], i: int) -> dict[str, Any]:
    name = call_names.get(str(message.get("tool_call_id") or "")) or message.get("name")
    if not name:
        raise BadRequestError(
            f"messages[{i}]: cannot tell which function this tool result answers: no earlier assistant tool_call "
            "has its tool_call_id, and it has no 'name'",
            param="messages",
        )
    content = message.get("content")
    text = content if isinstance(content, str) else "".join(p.get("text", "") for p in _parts(content, i))
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"content": text}
    return {"functionResponse": {"name": name, "response": response}}


# --- tools ---------------------------------------------------------------------------------------


def _declaration(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
    out: dict[str, Any] = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    parameters = function.get("parameters")
    # Gemini rejects an object schema without properties; a function without parameters omits them
    if isinstance(parameters, dict) and (parameters.get("properties") or parameters.get("type") != "object"):
        out["parameters"] = clean_schema(parameters)
    return out


def clean_schema(schema: Any) -> Any:
    """JSON Schema -> Gemini's OpenAPI subset: drop unsupported keys, ``type: [x, "null"]`` -> nullable."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _UNSUPPORTED_SCHEMA_KEYS:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: clean_schema(sub) for name, sub in value.items()}
        elif key in ("items", "not"):
            out[key] = clean_schema(value)
        elif key in ("anyOf", "oneOf", "allOf") and isinstance(value, list):
            out[key] = [clean_schema(sub) for sub in value]
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            out[key] = types[0] if len(types) == 1 else types
            if len(types) < len(value):
                out["nullable"] = True
        else:
            out[key] = value
    return out


def _tool_config(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str) and choice in _TOOL_MODES:
        return {"mode": _TOOL_MODES[choice]}
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name:
            return {"mode": "ANY", "allowedFunctionNames": [name]}
    raise BadRequestError(f"unsupported tool_choice {choice!r}", param="tool_choice")


# --- generation config ---------------------------------------------------------------------------


def _generation_config(params: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, target in _GENERATION_PARAMS.items():
        if key in params:
            config[target] = params[key]
    max_tokens = params.get("max_completion_tokens", params.get("max_tokens"))
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = params.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    fmt = params.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt["type"] == "json_schema" else fmt.get("schema")
        if isinstance(schema, dict):
            config["responseSchema"] = clean_schema(schema)
    if "top_k" in extra:  # LiteLLM's spelling
        config["topK"] = extra.pop("top_k")
    for key in ("generationConfig", "generation_config"):
        if isinstance(extra.get(key), dict):
            config.update(extra.pop(key))  # an explicit provider config wins
    return config
