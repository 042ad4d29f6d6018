"""Type and range checks of the OpenAI parameters a client sends, so garbage is the proxy's 400.

Without them a wrong type reaches a provider adapter (and may surface as a 500) or costs an upstream
round trip to learn what OpenAI documents anyway. Ranges follow OpenAI's API reference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from llmplex._latency import valid_quantile
from llmplex.proxy.errors import ProxyError

__all__ = [
    "ADAPTER_KEYS",
    "MAX_DEPTH",
    "MAX_HEDGE_DELAY",
    "MAX_MODELS",
    "MAX_TIMEOUT",
    "Hedge",
    "check_depth",
    "check_extra_body",
    "check_hedge",
    "check_messages",
    "check_params",
]

_MAX_STOP = 4
_TOOL_CHOICES = ("none", "auto", "required")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

MAX_MODELS = 16  # models in one request: each one is an upstream call
MAX_TIMEOUT = 3600.0  # seconds, for a client-set upstream timeout
MAX_HEDGE_DELAY = 60.0  # seconds; a larger delay is a mistake (and would overflow the event loop's clock)
# orjson reads 1024 levels but writes at most 254, and the adapters wrap what a client sends in a few more
MAX_DEPTH = 200
# Body keys the provider adapters build from the request itself (every provider's spelling). Provider extras
# (``extra_body``, and unknown top-level fields) are merged into the upstream body as given, so one of these
# would replace the model, the messages or the stream mode the proxy checked (and call any upstream model
# with the proxy's key while the answer still names the configured one).
ADAPTER_KEYS = frozenset(
    {"model", "messages", "stream", "system", "contents", "systemInstruction", "system_instruction"}
)
_RESPONSE_FORMATS = ("text", "json_object", "json_schema")
_MAX_CANDIDATES = 128  # Gemini's n (candidateCount), which its generationConfig extra can also set

_NUMBER = (int, float)
# name -> (accepted types, minimum, maximum)
_RANGES: dict[str, tuple[tuple[type, ...], float | None, float | None]] = {
    "n": ((int,), 1, 128),
    "max_tokens": ((int,), 1, None),
    "max_completion_tokens": ((int,), 1, None),
    "temperature": (_NUMBER, 0, 2),
    "top_p": (_NUMBER, 0, 1),
    "presence_penalty": (_NUMBER, -2, 2),
    "frequency_penalty": (_NUMBER, -2, 2),
    "top_logprobs": ((int,), 0, 20),
    "seed": ((int,), None, None),
    # a client may shorten or lengthen the upstream timeout, within sane bounds
    "timeout": (_NUMBER, 1, MAX_TIMEOUT),
    "request_timeout": (_NUMBER, 1, MAX_TIMEOUT),
}
_TYPES: dict[str, tuple[type, ...]] = {
    "stop": (str, list),
    "tools": (list,),
    "tool_choice": (str, dict),
    "user": (str,),
    "response_format": (dict,),
    "stream_options": (dict,),
    "logit_bias": (dict,),
    "metadata": (dict,),
    "parallel_tool_calls": (bool,),
    "logprobs": (bool,),
    "reasoning_effort": (str,),
    "drop_params": (bool,),
}
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", list: "an array", dict: "an object", bool: "bool"}


def check_params(options: Mapping[str, Any]) -> None:
    """Raise a 400 ``ProxyError`` naming the first parameter with a wrong type or an out-of-range value."""
    for name, value in options.items():
        if value is None:
            continue  # OpenAI clients send null for "not set"
        if name in _RANGES:
            kinds, low, high = _RANGES[name]
            _check_type(name, value, kinds)
            if (low is not None and value < low) or (high is not None and value > high):
                raise ProxyError(400, f"'{name}' must be {_range(low, high)}, got {value!r}", param=name)
        elif name in _TYPES:
            _check_type(name, value, _TYPES[name])
    stop = options.get("stop")
    if isinstance(stop, list) and (len(stop) > _MAX_STOP or not all(isinstance(s, str) for s in stop)):
        raise ProxyError(400, f"'stop' must be a string or an array of at most {_MAX_STOP} strings", param="stop")
    choice = options.get("tool_choice")
    if isinstance(choice, str) and choice not in _TOOL_CHOICES:
        raise ProxyError(400, f"'tool_choice' must be one of {list(_TOOL_CHOICES)} or an object", param="tool_choice")
    stream_options = options.get("stream_options")
    if isinstance(stream_options, dict) and stream_options.get("include_usage") not in (None, True, False):
        raise ProxyError(400, "'stream_options.include_usage' must be true or false", param="stream_options")
    tools = options.get("tools")
    if tools:
        _check_tools(tools)
    response_format = options.get("response_format")
    if isinstance(response_format, dict):
        _check_response_format(response_format)


def check_extra_body(extra: Any, forbidden: tuple[str, ...]) -> None:
    """``extra_body`` may add provider fields, never replace what the adapter sets; OpenAI params in it are
    checked like top-level ones. Errors name ``extra_body`` as the param and the key in the message."""
    if not isinstance(extra, dict):
        raise ProxyError(400, "'extra_body' must be an object", param="extra_body")
    for key in extra:
        if key in ADAPTER_KEYS or key in forbidden:
            raise ProxyError(
                400, f"'extra_body.{key}' cannot be set through the proxy: the proxy sets it", param="extra_body"
            )
    try:
        check_params(extra)
    except ProxyError as exc:
        raise ProxyError(400, f"extra_body: {exc.message}", param="extra_body") from None
    for name in ("generationConfig", "generation_config"):
        config = extra.get(name)
        count = config.get("candidateCount", 1) if isinstance(config, dict) else 1
        integral = isinstance(count, int) or (isinstance(count, float) and count.is_integer())  # 2.0 is 2 in JSON
        if isinstance(count, bool) or not integral or not 1 <= count <= _MAX_CANDIDATES:
            raise ProxyError(
                400,
                f"'extra_body.{name}.candidateCount' must be an integer between 1 and {_MAX_CANDIDATES}",
                param="extra_body",
            )


def check_depth(value: Any, limit: int = MAX_DEPTH, raw: bytes | None = None) -> None:
    """A 400 when arrays/objects nest deeper than ``limit`` (such a body could not be forwarded).

    ``raw``: the JSON ``value`` was parsed from. Nesting needs an opening bracket per level, so a body with at
    most ``limit`` of them (nearly every request; brackets inside strings only add to the count) is not walked.
    """
    if raw is not None and raw.count(b"[") + raw.count(b"{") <= limit:
        return
    if not _within(value, limit):
        raise ProxyError(400, f"The request cannot be forwarded: JSON nested too deeply (over {limit} levels)")


def _within(value: dict[str, Any] | list[Any], left: int) -> bool:
    # recursive (at most ``limit`` frames): on the hot path it is faster than an explicit stack
    if left <= 0:
        return False
    for child in value.values() if type(value) is dict else value:
        if (type(child) is dict or type(child) is list) and not _within(child, left - 1):
            return False
    return True


def _check_response_format(fmt: dict[str, Any]) -> None:
    kind = fmt.get("type")
    if kind not in _RESPONSE_FORMATS:
        raise ProxyError(
            400, f"'response_format.type' must be one of {list(_RESPONSE_FORMATS)}", param="response_format"
        )
    if kind != "json_schema":
        return
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict):
        raise ProxyError(400, "'response_format.json_schema' must be an object", param="response_format")
    if not isinstance(spec.get("schema", {}), dict):
        raise ProxyError(400, "'response_format.json_schema.schema' must be an object", param="response_format")
    if not isinstance(spec.get("name", ""), str):
        raise ProxyError(400, "'response_format.json_schema.name' must be a string", param="response_format")


Hedge = float | Literal["auto"] | None


def check_hedge(hedge: Any, quantile: Any) -> tuple[Hedge, float | None]:
    """``hedge_delay`` (seconds or ``"auto"``) and ``hedge_quantile`` (only with ``"auto"``), as sent or a 400."""
    if (
        hedge is not None
        and hedge != "auto"
        and (isinstance(hedge, bool) or not isinstance(hedge, (int, float)) or not 0 <= hedge <= MAX_HEDGE_DELAY)
    ):
        raise ProxyError(
            400,
            f"'hedge_delay' must be \"auto\" or a number of seconds between 0 and {MAX_HEDGE_DELAY:g}",
            param="hedge_delay",
        )
    if quantile is None:
        return (hedge if hedge in (None, "auto") else float(hedge)), None
    if hedge != "auto":
        raise ProxyError(400, '\'hedge_quantile\' applies only with "hedge_delay": "auto"', param="hedge_quantile")
    if not valid_quantile(quantile):
        raise ProxyError(400, "'hedge_quantile' must be a number greater than 0 and at most 1", param="hedge_quantile")
    return hedge, float(quantile)


def _check_tools(tools: list[Any]) -> None:
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type") != "function":
            raise ProxyError(400, f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}", param="tools")
        name = function.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise ProxyError(400, f"tools[{i}].function.name must match ^[A-Za-z0-9_-]{{1,64}}$", param="tools")
        if not isinstance(function.get("parameters", {}), dict) or not isinstance(function.get("description", ""), str):
            raise ProxyError(
                400, f"tools[{i}].function: 'parameters' must be an object, 'description' a string", param="tools"
            )


def check_messages(messages: list[Any]) -> None:
    """Content is a string, null or an array of typed parts; ``name`` a string (roles are checked by the SDK)."""
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue  # the SDK reports it with the right wording
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise ProxyError(
                400, f"messages[{i}].content must be a string, an array of content parts or null", param="messages"
            )
        if isinstance(content, list) and not all(_valid_part(part) for part in content):
            raise ProxyError(
                400, f"messages[{i}].parts must be objects with a 'type' (and 'text' for text)", param="messages"
            )
        if "name" in message and not isinstance(message["name"], str):
            raise ProxyError(400, f"messages[{i}].name must be a string", param="messages")
        if message.get("tool_call_id") is not None and not isinstance(message["tool_call_id"], str):
            raise ProxyError(400, f"messages[{i}].tool_call_id must be a string", param="messages")
        calls = message.get("tool_calls")
        if calls is not None:
            _check_tool_calls(calls, i)


def _check_tool_calls(calls: Any, i: int) -> None:
    where = f"messages[{i}].tool_calls"
    if not isinstance(calls, list):
        raise ProxyError(400, f"{where} must be an array of tool calls", param="messages")
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise ProxyError(
                400, f"{where}[{j}] must be {{'id', 'type': 'function', 'function': {{...}}}}", param="messages"
            )
        if not isinstance(call.get("id", ""), str) or call.get("type", "function") != "function":
            raise ProxyError(400, f"{where}[{j}]: 'id' must be a string and 'type' \"function\"", param="messages")
        if not isinstance(function.get("name"), str):
            raise ProxyError(400, f"{where}[{j}].function.name must be a string", param="messages")
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, (str, dict)):
            raise ProxyError(400, f"{where}[{j}].function.arguments must be a string (of JSON)", param="messages")


def _valid_part(part: Any) -> bool:
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        return False
    text = part.get("text")
    return isinstance(text, str) if part["type"] == "text" or "text" in part else True


def _check_type(name: str, value: Any, kinds: tuple[type, ...]) -> None:
    if isinstance(value, float) and int in kinds and value.is_integer():
        return  # JSON has one number type: 2.0 is an integer (as in JSON Schema)
    # bool is an int in Python but not in JSON Schema
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        wanted = " or ".join(_TYPE_NAMES[k] for k in kinds)
        raise ProxyError(400, f"'{name}' must be {wanted}", param=name)


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low} and {high}"
    return f">= {low}" if low is not None else f"<= {high}"
