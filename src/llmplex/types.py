"""Public response types, in the exact OpenAI ``chat.completion`` / ``chat.completion.chunk`` shapes.

Every model allows extra fields (providers add their own, e.g. ``service_tier``) and dumps only
what was set, so a response that came from OpenAI dumps back to the bytes OpenAI sent.
Objects read as attributes (``r.choices[0].message.content``) and as dicts (``r["choices"]``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, PrivateAttr

__all__ = [
    "ChatCompletionMessageToolCall",
    "ChoiceDeltaToolCall",
    "ChoiceDeltaToolCallFunction",
    "Choices",
    "Delta",
    "Function",
    "Message",
    "ModelResponse",
    "ModelResponseStream",
    "OpenAIObject",
    "StreamingChoices",
    "Usage",
    "new_completion_id",
]


def new_completion_id() -> str:
    return "chatcmpl-" + os.urandom(16).hex()


class OpenAIObject(BaseModel):
    """Base: extra fields allowed, dict-style access, ``model_dump`` of set fields only."""

    model_config = ConfigDict(extra="allow", protected_namespaces=(), defer_build=True)

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.model_fields_set | set(self.__pydantic_extra__ or {})

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def keys(self) -> Iterator[str]:
        return iter(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        # OpenAI bodies are reproduced as sent: unset fields are not invented.
        kwargs.setdefault("exclude_unset", True)
        return super().model_dump(**kwargs)

    def model_dump_json(self, **kwargs: Any) -> str:
        kwargs.setdefault("exclude_unset", True)
        return super().model_dump_json(**kwargs)

    def __eq__(self, other: object) -> bool:
        # compares with plain dicts too, so code written against dict-shaped chunks keeps working
        if isinstance(other, dict):
            return self.model_dump() == other
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def json_bytes(self) -> bytes:
        """Compact JSON (orjson), the proxy's wire form."""
        return orjson.dumps(self.model_dump())


class Function(OpenAIObject):
    name: str | None = None
    arguments: str = ""


class ChatCompletionMessageToolCall(OpenAIObject):
    id: str | None = None
    type: Literal["function"] = "function"
    function: Function


class Message(OpenAIObject):
    role: str = "assistant"
    content: str | None = None
    tool_calls: list[ChatCompletionMessageToolCall] | None = None


class Choices(OpenAIObject):
    # field order = OpenAI's key order, so dumped JSON matches the bytes OpenAI sends
    index: int = 0
    message: Message
    logprobs: Any = None
    finish_reason: str | None = None


class Usage(OpenAIObject):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class _HasHiddenParams(OpenAIObject):
    _hidden_params: dict[str, Any] = PrivateAttr(default_factory=dict)
    # the upstream's own JSON for this object, when an OpenAI-compatible provider sent it as is
    _wire: str | bytes | None = PrivateAttr(default=None)

    def _keep_wire(self, wire: str | bytes) -> None:
        private = self.__pydantic_private__  # directly: pydantic's private-attribute access costs a microsecond
        if private is not None:
            private["_wire"] = wire

    def wire_bytes(self) -> bytes:
        """What the proxy sends: the upstream's own bytes when this came from an OpenAI-compatible provider
        (no re-serialising), else ``json_bytes()``. Only for objects not modified since they were parsed."""
        private = self.__pydantic_private__
        wire = private.get("_wire") if private else None
        if wire is None:
            return self.json_bytes()
        return wire if isinstance(wire, bytes) else wire.encode()

    @property
    def hidden_params(self) -> dict[str, Any]:
        """Not serialised: provider, api_base, response_cost, race metadata, timings."""
        private = self.__pydantic_private__  # directly: pydantic's private-attribute access costs a microsecond
        if private is None:
            return self._hidden_params
        hidden: dict[str, Any] = private["_hidden_params"]
        return hidden


class ModelResponse(_HasHiddenParams):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str | None = None
    choices: list[Choices]
    usage: Usage | None = None
    service_tier: str | None = None
    system_fingerprint: str | None = None

    @classmethod
    def build(
        cls,
        *,
        model: str,
        content: str | None,
        finish_reason: str | None = "stop",
        tool_calls: list[dict[str, Any]] | None = None,
        usage: dict[str, int] | None = None,
        response_id: str | None = None,
    ) -> ModelResponse:
        """One-choice response with every standard field set (adapters and mocks use this)."""
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if tool_calls:
            message["tool_calls"] = tool_calls
        body: dict[str, Any] = {
            "id": response_id or new_completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        }
        if usage is not None:
            body["usage"] = usage
        return cls.model_validate(body)


class ChoiceDeltaToolCallFunction(OpenAIObject):
    name: str | None = None
    arguments: str | None = None


class ChoiceDeltaToolCall(OpenAIObject):
    """A streamed tool-call fragment; only the first fragment of a call carries ``id`` and ``name``."""

    index: int = 0
    id: str | None = None
    type: str | None = None
    function: ChoiceDeltaToolCallFunction | None = None


class Delta(OpenAIObject):
    role: str | None = None
    content: str | None = None
    tool_calls: list[ChoiceDeltaToolCall] | None = None


class StreamingChoices(OpenAIObject):
    index: int = 0
    delta: Delta
    logprobs: Any = None
    finish_reason: str | None = None


class ModelResponseStream(_HasHiddenParams):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str | None = None
    service_tier: str | None = None
    system_fingerprint: str | None = None
    choices: list[StreamingChoices]
    usage: Usage | None = None

    @classmethod
    def from_wire(cls, obj: dict[str, Any], data: str) -> ModelResponseStream:
        """Validate ``obj``, the parsed form of ``data``; ``wire_bytes()`` then relays ``data`` itself."""
        chunk = cls.model_validate(obj)
        if "\n" not in data:  # a multi-line data field cannot be relayed as one data line
            chunk._keep_wire(data)
        return chunk

    def has_content(self) -> bool:
        """True when this chunk carries output (text or a tool call), not just role or usage."""
        for choice in self.choices:
            delta = choice.delta
            if delta.content or delta.tool_calls:
                return True
        return False
