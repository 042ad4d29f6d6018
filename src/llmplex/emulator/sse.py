"""Server-sent event framing for the emulated providers (kept apart from llmplex's own ``_sse``)."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["DONE", "data_event", "named_event"]

DONE = b"data: [DONE]\n\n"


def data_event(payload: Any) -> bytes:
    """A ``data:``-only event (OpenAI, Gemini)."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def named_event(name: str, payload: Any) -> bytes:
    """An event whose ``event:`` name repeats the payload's ``type`` (Anthropic, Cohere)."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
