"""The embedding adapter contract: pure translation, no I/O (the chat contract is ``providers.base``).

The rule for every capability beyond chat: a provider's chat adapter stays in ``providers/<provider>.py``;
each further capability gets its own adapter class in ``providers/<provider>_<capability>.py``
(``openai_embeddings``, ``cohere_embeddings``, ``gemini_embeddings``, ``openai_text``), found through one
table per capability in ``providers/capabilities.py``. A capability adapter holds its provider's chat
adapter for everything the two share: endpoint defaults, key variables and error parsing.

An ``EmbeddingRequest`` holds at most ``limits.max_inputs`` inputs (the caller splits longer lists);
``parse_response`` returns the vectors in input order (float lists, or base64 strings when the request
asked for them and ``native_base64`` is set) and the token count, or None when the provider reports none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from llmplex.providers.base import Endpoint, HTTPRequest, ProviderAdapter

__all__ = ["EmbeddingAdapter", "EmbeddingLimits", "EmbeddingParsed", "EmbeddingRequest"]


@dataclass(slots=True)
class EmbeddingRequest:
    """One upstream embedding request. ``inputs``: strings, or token arrays when the adapter accepts them."""

    model: str
    inputs: list[Any]
    params: dict[str, Any] = field(default_factory=dict)  # dimensions, encoding_format, user
    extra: dict[str, Any] = field(default_factory=dict)  # provider fields, merged into the body as given


@dataclass(frozen=True, slots=True)
class EmbeddingLimits:
    """What one request may carry: inputs, and estimated tokens over all inputs (None: no limit)."""

    max_inputs: int
    max_tokens: int | None = None


@dataclass(slots=True)
class EmbeddingParsed:
    vectors: list[Any]
    prompt_tokens: int | None


class EmbeddingAdapter:
    """Base: subclasses set the class attributes and build / parse their provider's bodies."""

    # class-level defaults; a data-row adapter (OpenAI-compatible vendors) sets them per instance
    limits: EmbeddingLimits = EmbeddingLimits(max_inputs=2048)
    supported_params: frozenset[str] = frozenset({"dimensions", "encoding_format", "user"})
    accepts_token_arrays: bool = False
    native_base64: bool = False
    # provider extras set when the caller gave none (LiteLLM's defaults, e.g. Cohere's input_type)
    default_extra: ClassVar[dict[str, Any]] = {}

    def __init__(self, chat: ProviderAdapter) -> None:
        self.chat = chat

    @property
    def name(self) -> str:
        return self.chat.name

    def build_request(self, request: EmbeddingRequest, endpoint: Endpoint) -> HTTPRequest:
        raise NotImplementedError

    def parse_response(self, body: Any, request: EmbeddingRequest) -> EmbeddingParsed:
        raise NotImplementedError
