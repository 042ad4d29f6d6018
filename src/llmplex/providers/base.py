"""The provider adapter contract: data plus pure translation functions, no I/O.

An adapter turns an OpenAI-shaped ``CompletionRequest`` into the provider's HTTP request, and the
provider's JSON body / SSE events / error bodies back into OpenAI shapes. The transport module does
the sending; the stream module drives ``parse_event``. Adapters may raise ``StreamError`` for an
error event inside a stream and ``BadRequestError`` for input they cannot translate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from llmplex._redact import MASK, SECRET_HEADERS, display_url
from llmplex._sse import SSEEvent
from llmplex.exceptions import APIStatusError, ContentPolicyViolationError, ContextWindowExceededError
from llmplex.types import ModelResponse, ModelResponseStream

if TYPE_CHECKING:
    from llmplex.relayed import RelayedChunk

__all__ = [
    "OPENAI_PARAMS",
    "CompletionRequest",
    "Endpoint",
    "ErrorDetails",
    "HTTPRequest",
    "ProviderAdapter",
    "StreamState",
]

# The OpenAI chat parameters llmplex understands; anything else a caller passes is a provider extra.
OPENAI_PARAMS: frozenset[str] = frozenset(
    {
        "temperature",
        "top_p",
        "n",
        "stream_options",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "user",
        "seed",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "logprobs",
        "top_logprobs",
        "reasoning_effort",
    }
)


@dataclass(slots=True)
class CompletionRequest:
    """An OpenAI-shaped chat request after model resolution.

    ``params`` holds the standard OpenAI parameters the caller set (never ``None`` values);
    ``extra`` holds provider-specific fields, merged into the provider body unchanged.
    """

    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def include_usage(self) -> bool:
        options = self.params.get("stream_options") or {}
        return bool(isinstance(options, dict) and options.get("include_usage"))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and as whom to call: resolved from arguments, then the environment, then defaults."""

    base_url: str
    api_key: str | None = None
    api_version: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Endpoint(base_url={self.base_url!r}, api_key={'***' if self.api_key else None})"


@dataclass(slots=True, repr=False)
class HTTPRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None

    @classmethod
    def post_json(cls, url: str, headers: dict[str, str], body: dict[str, Any]) -> HTTPRequest:
        headers = {"Content-Type": "application/json", **headers}
        return cls("POST", url, headers, orjson.dumps(body))

    def __repr__(self) -> str:
        # error reporters print the locals of failed frames: never the key (headers, URL) or the prompt (body)
        headers = {k: MASK if k.lower() in SECRET_HEADERS else v for k, v in self.headers.items()}
        body = "None" if self.body is None else f"<{len(self.body)} bytes>"
        return f"HTTPRequest(method={self.method!r}, url={display_url(self.url)!r}, headers={headers!r}, body={body})"


@dataclass(slots=True)
class ErrorDetails:
    message: str
    type: str | None = None
    code: str | None = None
    param: str | None = None


class StreamState:
    """Per-stream mutable state; adapters subclass it when deltas need accumulating."""

    __slots__ = ("__dict__", "created", "finished", "model", "response_id")

    def __init__(self, model: str) -> None:
        self.finished = False
        self.response_id = ""
        self.created = 0
        self.model = model


class ProviderAdapter:
    """Base adapter. Subclasses set the class attributes and override the translation methods."""

    name: ClassVar[str] = ""
    default_base_url: ClassVar[str | None] = None
    api_key_env: ClassVar[tuple[str, ...]] = ()
    api_version_env: ClassVar[tuple[str, ...]] = ()
    requires_api_key: ClassVar[bool] = True
    requires_api_base: ClassVar[bool] = False
    supported_params: ClassVar[frozenset[str]] = OPENAI_PARAMS
    supports_streaming: ClassVar[bool] = True
    # the provider's JSON body is already an OpenAI chat.completion: the proxy may relay its bytes as is
    relays_wire: ClassVar[bool] = False
    supports_tools: ClassVar[bool] = True

    @property
    def api_base_env(self) -> tuple[str, ...]:
        upper = self.name.upper()
        return (f"{upper}_API_BASE", f"{upper}_BASE_URL")

    def build_request(self, request: CompletionRequest, endpoint: Endpoint) -> HTTPRequest:
        raise NotImplementedError

    def parse_response(self, body: Any, request: CompletionRequest) -> ModelResponse:
        raise NotImplementedError

    def new_stream_state(self, request: CompletionRequest) -> StreamState:
        return StreamState(request.model)

    def parse_event(self, event: SSEEvent, state: StreamState) -> list[ModelResponseStream]:
        raise NotImplementedError

    def parse_event_relayed(self, event: SSEEvent, state: StreamState) -> list[ModelResponseStream | RelayedChunk]:
        """``parse_event`` for a relay: adapters with ``relays_wire`` may return chunks unvalidated."""
        return list(self.parse_event(event, state))

    def parse_error(self, status: int, body: Any) -> ErrorDetails:
        """Default: OpenAI-style ``{"error": {"message", "type", "code", "param"}}`` bodies."""
        return openai_error_details(status, body)

    def refine_error_class(self, status: int, details: ErrorDetails) -> type[APIStatusError] | None:
        """A finer class than the status gives (context window, content policy), or None."""
        text = f"{details.code or ''} {details.message}".lower()
        if status in (400, 413) and ("context_length" in text or "context window" in text or "too long" in text):
            return ContextWindowExceededError
        if status == 400 and any(word in text for word in _POLICY_WORDS):
            return ContentPolicyViolationError
        return None


# OpenAI's ``content_policy_violation``, Azure's ``content_filter`` code and "content management policy" text
_POLICY_WORDS = ("content_policy", "content_filter", "content management policy")


def openai_error_details(status: int, body: Any) -> ErrorDetails:
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            message = err.get("message")
            if isinstance(message, dict):  # Mistral sometimes nests an object here
                message = orjson.dumps(message).decode()
            code = err.get("code")
            return ErrorDetails(
                message=str(message or body),
                type=_str_or_none(err.get("type")),
                code=_str_or_none(code),
                param=_str_or_none(err.get("param")),
            )
        if isinstance(err, str):
            return ErrorDetails(message=err)
    if isinstance(body, str) and body:
        return ErrorDetails(message=body[:2000])
    return ErrorDetails(message=f"HTTP {status}")


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
