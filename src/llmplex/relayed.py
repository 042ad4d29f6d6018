"""``RelayedResponse``: a non-streamed answer from an OpenAI-compatible provider, kept as the JSON it sent.

A gateway forwards such an answer byte for byte; building a validated ``ModelResponse`` for it (about
10 us, a twentieth of the proxy's CPU per request) only to send the upstream's bytes again is waste.
``AsyncClient.run_call(call, relay=True)`` returns one of these instead, after checking the body's
outline (``relayable``); the full ``ModelResponse`` is validated on first use of any of its fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from llmplex.exceptions import unreadable_response
from llmplex.types import ModelResponse

__all__ = ["RelayedResponse", "relayable"]


def relayable(body: Any) -> bool:
    """Whether ``body`` has a chat completion's outline, so it can be relayed without validation:
    an id, a creation time, choices that each hold a message, integer token counts.

    Anything else goes through ``ModelResponse`` validation and its errors, as before.
    """
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not isinstance(body.get("created"), int):
        return False
    choices = body.get("choices")
    if not isinstance(choices, list) or "error" in body:
        return False
    for choice in choices:
        if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
            return False
    usage = body.get("usage")
    if usage is None:
        return True
    return isinstance(usage, dict) and all(
        type(usage.get(key, 0)) is int for key in ("prompt_tokens", "completion_tokens", "total_tokens")
    )


class RelayedResponse:
    """The upstream's bytes (``wire_bytes()``), its token counts and hidden params; the rest on demand.

    Attribute access other than these (``choices``, ``id``, ...) and ``response()`` validate the
    body into a ``ModelResponse`` once and read it from there.
    """

    __slots__ = ("_body", "_parsed", "_wire", "completion_tokens", "hidden_params", "model", "prompt_tokens")

    def __init__(self, wire: bytes, body: dict[str, Any], hidden_params: dict[str, Any]) -> None:
        self._wire = wire
        self._body = body
        self._parsed: ModelResponse | None = None
        self.hidden_params = hidden_params
        model = body.get("model")
        self.model: str | None = model if isinstance(model, str) else None
        usage = body.get("usage") or {}
        self.prompt_tokens: int = usage.get("prompt_tokens", 0)
        self.completion_tokens: int = usage.get("completion_tokens", 0)

    @property
    def total_tokens(self) -> int:
        usage = self._body.get("usage")
        total = usage.get("total_tokens") if usage else None
        return total if total else self.prompt_tokens + self.completion_tokens

    @property
    def has_usage(self) -> bool:
        return self._body.get("usage") is not None

    def wire_bytes(self) -> bytes:
        return self._wire

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
