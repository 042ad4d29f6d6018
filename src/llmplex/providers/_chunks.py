"""What the provider translators share: decoding a stream's JSON events, building OpenAI chunks, and
turning a tool call's input into OpenAI's JSON-string ``arguments``.

Pure, no I/O. A translated stream keeps one id, ``created`` and model for all its chunks (OpenAI's
clients rely on that), so the envelope is built here from the stream state and nowhere else.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from llmplex.exceptions import StreamError
from llmplex.providers.base import StreamState
from llmplex.types import ModelResponseStream

__all__ = [
    "TranslatedStreamState",
    "arguments_json",
    "choice",
    "delta_chunk",
    "event_object",
    "role_delta",
    "stream_chunk",
    "usage_chunk",
]


class TranslatedStreamState(StreamState):
    """State of a stream whose chunks we build ourselves (the provider does not speak OpenAI)."""

    def __init__(self, model: str, include_usage: bool) -> None:
        super().__init__(model)
        self.include_usage = include_usage
        self.created = int(time.time())


def event_object(data: str, provider: str) -> dict[str, Any]:
    """The JSON object an SSE event carries; anything else is a ``StreamError``."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise StreamError(f"malformed JSON in {provider} stream: {data[:200]!r}", provider=provider) from None
    if not isinstance(obj, dict):
        raise StreamError(f"unexpected {provider} stream payload: {data[:200]!r}", provider=provider)
    return obj


def stream_chunk(
    state: StreamState, choices: list[dict[str, Any]], *, usage: dict[str, Any] | None = None, **envelope: Any
) -> ModelResponseStream:
    """A ``chat.completion.chunk`` with the stream's id, created time and model; ``envelope`` adds top-level keys."""
    body: dict[str, Any] = {
        "id": state.response_id,
        "object": "chat.completion.chunk",
        "created": state.created,
        "model": state.model,
        **envelope,
        "choices": choices,
    }
    if usage is not None:
        body["usage"] = usage
    return ModelResponseStream.model_validate(body)


def choice(delta: dict[str, Any], finish_reason: str | None = None, *, index: int = 0, **fields: Any) -> dict[str, Any]:
    # OpenAI chunks always carry finish_reason, null until the last one
    return {"index": index, "delta": delta, **fields, "finish_reason": finish_reason}


def delta_chunk(
    state: StreamState, delta: dict[str, Any], finish_reason: str | None = None, *, index: int = 0
) -> ModelResponseStream:
    """A chunk with one choice: content, tool-call fragments, the role, or (empty delta) the finish reason."""
    return stream_chunk(state, [choice(delta, finish_reason, index=index)])


def role_delta() -> dict[str, Any]:
    """The delta of a choice's first chunk, as OpenAI sends it."""
    return {"role": "assistant", "content": ""}


def usage_chunk(state: StreamState, usage: dict[str, Any], **envelope: Any) -> ModelResponseStream:
    """The last chunk of a stream that asked for ``include_usage``: no choices, only usage."""
    return stream_chunk(state, [], usage=usage, **envelope)


def arguments_json(value: Any) -> str:
    """A provider's tool-call input (an object) as OpenAI's JSON-string ``arguments``; missing means ``{}``."""
    return orjson.dumps(value if value is not None else {}).decode()
