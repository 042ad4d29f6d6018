"""``RelayedResponse`` / ``RelayedChunk``: answers and streamed chunks of an OpenAI-compatible provider, kept as
the JSON it sent.

A gateway forwards such an answer byte for byte; building a validated ``ModelResponse`` for it (about
10 us, a twentieth of the proxy's CPU per request) only to send the upstream's bytes again is waste.
``AsyncClient.run_call(call, relay=True)`` returns one of these instead, after checking the body's
outline (``relayable``); the full ``ModelResponse`` is validated on first use of any of its fields.
Streams opened that way queue ``RelayedChunk``s (about 10 us saved per chunk), which
``CompletionStream.next_batch()`` hands to a relay as they are; iterating the stream validates them.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from llmplex.exceptions import unreadable_response
from llmplex.types import ModelResponse, ModelResponseStream

__all__ = ["RelayedChunk", "RelayedResponse", "relayable", "relayable_chunk"]


def relayable(body: Any) -> bool:
    """Whether ``body`` has a chat completion's outline, so it can be relayed without validation:
    an id, a creation time, choices that each hold a message, integer token counts.

    Anything else goes through ``ModelResponse`` validation and its errors, as before.
    """
    return isinstance(body, dict) and "error" not in body and _has_outline(body, "message")


def relayable_chunk(obj: dict[str, Any]) -> bool:
    """Whether a streamed chunk has a chunk's outline (choices with deltas instead of messages), so it can
    be relayed without validation. Anything else is validated as before."""
    return _has_outline(obj, "delta")


def _has_outline(obj: dict[str, Any], part: str) -> bool:
    """An id, a creation time, choices that each hold a ``part`` object, integer token counts if any."""
    if not isinstance(obj.get("id"), str) or not isinstance(obj.get("created"), int):
        return False
    choices = obj.get("choices")
    if not isinstance(choices, list):
        return False
    for choice in choices:
        if not isinstance(choice, dict) or not isinstance(choice.get(part), dict):
            return False
    usage = obj.get("usage")
    if usage is None:
        return True
    return isinstance(usage, dict) and all(
        type(usage.get(key, 0)) is int for key in ("prompt_tokens", "completion_tokens", "total_tokens")
    )


def _usage_counts(usage: dict[str, int] | None) -> dict[str, int] | None:
    """Token counts of an outline-checked ``usage`` object (a missing total is the sum), or None."""
    if not usage:
        return None
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": usage.get("total_tokens") or prompt + completion,
    }


class RelayedResponse:
    """The upstream's bytes (``wire_bytes()``), its token counts and hidden params; the rest on demand.

    Attribute access other than these (``choices``, ``id``, ...) and ``response()`` validate the
    body into a ``ModelResponse`` once and read it from there.
    """

    __slots__ = ("_body", "_parsed", "_wire", "hidden_params", "model")

    def __init__(self, wire: bytes, body: dict[str, Any], hidden_params: dict[str, Any]) -> None:
        self._wire = wire
        self._body = body
        self._parsed: ModelResponse | None = None
        self.hidden_params = hidden_params
        model = body.get("model")
        self.model: str | None = model if isinstance(model, str) else None

    def usage_counts(self) -> dict[str, int] | None:
        """``prompt_tokens``, ``completion_tokens``, ``total_tokens`` read without validating; None without usage."""
        return _usage_counts(self._body.get("usage"))

    def wire_bytes(self) -> bytes:
        return self._wire

    def as_dict(self) -> dict[str, Any]:
        """The body as the upstream sent it (parsed JSON; do not modify)."""
        return self._body

    def response(self) -> ModelResponse:
        """The validated ``ModelResponse`` (built on first call; its hidden params are this object's)."""
        parsed = self._parsed
        if parsed is None:
            try:
                parsed = self._parsed = ModelResponse.model_validate(self._body)
            except ValidationError as exc:
                raise unreadable_response(exc, self.hidden_params.get("custom_llm_provider"), self.model) from None
            parsed._keep_wire(self._wire)
            parsed._hidden_params = self.hidden_params
        return parsed

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # private and dunder names: never validate for them (copy, pickle)
            raise AttributeError(name)
        return getattr(self.response(), name)

    def __repr__(self) -> str:
        return f"RelayedResponse(model={self.model!r}, {len(self._wire)} bytes)"


class RelayedChunk:
    """One streamed chunk kept as the upstream's JSON: what a relay needs (``wire_bytes()``, ``has_content()``,
    ``usage_counts()``) without validation; ``chunk()`` validates it into a ``ModelResponseStream`` once."""

    __slots__ = ("_data", "_obj", "_parsed")

    def __init__(self, obj: dict[str, Any], data: str) -> None:
        self._obj = obj
        self._data = data
        self._parsed: ModelResponseStream | None = None

    def wire_bytes(self) -> bytes:
        # a multi-line data field cannot go out as one data line: then compact JSON of the same object
        return orjson.dumps(self._obj) if "\n" in self._data else self._data.encode()

    def as_dict(self) -> dict[str, Any]:
        """The chunk as the upstream sent it (parsed JSON; do not modify)."""
        return self._obj

    def has_content(self) -> bool:
        """What ``ModelResponseStream.has_content`` says: text or a tool call in some choice's delta."""
        for choice in self._obj["choices"]:
            delta = choice["delta"]
            if delta.get("content") or delta.get("tool_calls"):
                return True
        return False

    def usage_counts(self) -> dict[str, int] | None:
        return _usage_counts(self._obj.get("usage"))

    def chunk(self) -> ModelResponseStream:
        parsed = self._parsed
        if parsed is None:
            try:
                parsed = self._parsed = ModelResponseStream.from_wire(self._obj, self._data)
            except ValidationError as exc:
                raise unreadable_response(exc, None, self._obj.get("model")) from None
        return parsed
