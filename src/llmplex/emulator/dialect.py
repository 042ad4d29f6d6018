"""The contract between the request pipeline and each emulated provider's wire format."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

from llmplex.emulator.conversation import Conversation, Reply

__all__ = ["JSON", "SSE", "Dialect", "Failure", "Headers", "Incoming", "StreamPlan", "bearer_token", "mask_key"]

Headers = list[tuple[bytes, bytes]]
JSON = b"application/json"
SSE = b"text/event-stream; charset=utf-8"


@dataclass(slots=True)
class Incoming:
    """One request as the dialects see it: header names lower-cased, query as a flat dict."""

    path_params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @classmethod
    def from_scope(cls, scope: dict[str, Any], body: bytes) -> Incoming:
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        raw_query: bytes = scope.get("query_string", b"")
        query = dict(parse_qsl(raw_query.decode("latin-1"))) if raw_query else {}
        return cls(scope.get("path_params", {}), query, headers, body)


@dataclass(frozen=True, slots=True)
class Failure:
    """A complete error answer in the provider's native shape."""

    status: int
    body: bytes
    headers: Headers = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """A stream cut at the points faults act on.

    ``prelude`` goes out right after the headers, each of ``chunks`` carries one content piece,
    ``epilogue`` finishes the stream (finish reason, usage, terminator). ``error_event`` is the
    provider's native mid-stream error; ``malformed`` is an event whose JSON does not parse.
    """

    media_type: bytes
    prelude: bytes
    chunks: list[bytes]
    epilogue: bytes
    error_event: bytes
    malformed: bytes


def bearer_token(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def mask_key(key: str) -> str:
    """Show a key the way providers do in their errors, never in full."""
    return f"{key[:3]}***{key[-2:]}" if len(key) > 8 else "***"


class Dialect(ABC):
    """One provider's wire format: auth, validation, native errors, responses and streams."""

    name: str = ""

    def load(self, incoming: Incoming) -> dict[str, Any] | Failure:
        """The JSON body, or the provider's 400 when it is not a JSON object."""
        try:
            payload = orjson.loads(incoming.body)
        except orjson.JSONDecodeError:
            return self.failure(400, "The request body is not valid JSON.")
        if not isinstance(payload, dict):
            return self.failure(400, "The request body must be a JSON object.")
        return payload

    def response_headers(self) -> Headers:
        """Headers every answer carries (request ids)."""
        return []

    def wants_stream(self, incoming: Incoming, payload: dict[str, Any]) -> bool:
        return payload.get("stream") is True

    @abstractmethod
    def authenticate(self, incoming: Incoming) -> Failure | None: ...

    @abstractmethod
    def validate(self, payload: dict[str, Any]) -> Failure | None: ...

    @abstractmethod
    def model_name(self, incoming: Incoming, payload: dict[str, Any]) -> str: ...

    @abstractmethod
    def conversation(self, payload: dict[str, Any]) -> Conversation: ...

    @abstractmethod
    def failure(
        self, status: int, message: str | None = None, *, model: str = "", retry_after: int | None = None
    ) -> Failure:
        """The native error answer for ``status`` (``message`` replaces the provider's stock text)."""

    @abstractmethod
    def completion(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> bytes: ...

    @abstractmethod
    def stream(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> StreamPlan: ...
