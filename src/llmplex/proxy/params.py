"""Type and range checks of the OpenAI parameters a client sends, so garbage is the proxy's 400.

Without them a wrong type reaches a provider adapter (and may surface as a 500) or costs an upstream
round trip to learn what OpenAI documents anyway. Ranges follow OpenAI's API reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmplex.proxy.errors import ProxyError

__all__ = ["MAX_MODELS", "check_messages", "check_params"]

MAX_MODELS = 16  # models in one request: each one is an upstream call

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
    "timeout": (_NUMBER, 0.001, None),
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
}
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", list: "an array", dict: "an object", bool: "a bool"}


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


def check_messages(messages: list[Any]) -> None:
    """Message content must be a string, an array of parts or null (roles are checked by the SDK)."""
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue  # the SDK reports it with the right wording
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise ProxyError(
                400, f"messages[{i}].content must be a string, an array of content parts or null", param="messages"
            )
        if isinstance(content, list) and not all(isinstance(part, dict) for part in content):
            raise ProxyError(400, f"messages[{i}].content parts must be objects", param="messages")


def _check_type(name: str, value: Any, kinds: tuple[type, ...]) -> None:
    # bool is an int in Python but not in JSON Schema
    if isinstance(value, bool) and bool not in kinds:
        ok = False
    else:
        ok = isinstance(value, kinds)
    if not ok:
        wanted = " or ".join(_TYPE_NAMES[k] for k in kinds)
        raise ProxyError(400, f"'{name}' must be {wanted}", param=name)


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low} and {high}"
    return f">= {low}" if low is not None else f"<= {high}"
