"""The OpenAI chat wire format, and the OpenAI-compatible vendors as data rows.

A vendor that differs from OpenAI only by configuration (base URL, key variable, a few quirks)
is a row in ``COMPATIBLE_PROVIDERS``; a vendor that needs behaviour gets its own module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from llmplex._sse import SSEEvent
from llmplex.exceptions import StreamError
from llmplex.providers._chunks import event_object
from llmplex.providers.base import (
    OPENAI_PARAMS,
    CompletionRequest,
    Endpoint,
    HTTPRequest,
    ProviderAdapter,
    StreamState,
    openai_error_details,
)
from llmplex.relayed import RelayedChunk, relayable_chunk
from llmplex.types import ModelResponse, ModelResponseStream

__all__ = ["COMPATIBLE_PROVIDERS", "CompatibleProvider", "OpenAIAdapter", "OpenAICompatibleAdapter"]


class OpenAIAdapter(ProviderAdapter):
    name = "openai"
    default_base_url: ClassVar[str | None] = "https://api.openai.com/v1"
    api_key_env: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    # params renamed on the way out, for servers that only know the older name
    renamed_params: ClassVar[dict[str, str]] = {}
    relays_wire: ClassVar[bool] = True

    def chat_url(self, request: CompletionRequest, endpoint: Endpoint) -> str:
        return endpoint.base_url.rstrip("/") + "/chat/completions"

    def auth_headers(self, endpoint: Endpoint) -> dict[str, str]:
        return {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}

    def build_body(self, request: CompletionRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "messages": request.messages}
        renamed = self.renamed_params
        for key, value in request.params.items():
            body[renamed.get(key, key)] = value
        if request.stream:
            body["stream"] = True
        else:
            body.pop("stream_options", None)
        body.update(request.extra)
        return body

    def build_request(self, request: CompletionRequest, endpoint: Endpoint) -> HTTPRequest:
        headers = {**self.auth_headers(endpoint), **endpoint.headers}
        if request.stream:
            headers["Accept"] = "text/event-stream"
        return HTTPRequest.post_json(self.chat_url(request, endpoint), headers, self.build_body(request))

    def parse_response(self, body: Any, request: CompletionRequest) -> ModelResponse:
        if not isinstance(body, dict) or "choices" not in body:
            raise StreamError(f"{self.name} returned a body without choices", provider=self.name, body=body)
        if isinstance(body.get("error"), dict):
            raise StreamError(str(body["error"].get("message")), provider=self.name, body=body)
        return ModelResponse.model_validate(body)

    def parse_event(self, event: SSEEvent, state: StreamState) -> list[ModelResponseStream]:
        obj = self._chunk_object(event, state)
        return [] if obj is None else [ModelResponseStream.from_wire(obj, event.data)]

    def parse_event_relayed(self, event: SSEEvent, state: StreamState) -> list[ModelResponseStream | RelayedChunk]:
        obj = self._chunk_object(event, state)
        if obj is None:
            return []
        if relayable_chunk(obj):
            return [RelayedChunk(obj, event.data)]
        return [ModelResponseStream.from_wire(obj, event.data)]

    def _chunk_object(self, event: SSEEvent, state: StreamState) -> dict[str, Any] | None:
        """The chunk an event carries; None for events that carry none ([DONE], empty, preambles)."""
        data = event.data
        if data.startswith("[DONE]"):
            state.finished = True
            return None
        if not data:
            return None
        obj = event_object(data, self.name)
        if obj.get("error"):
            details = openai_error_details(500, obj)
            raise StreamError(details.message, provider=self.name, body=obj, code=details.code, type=details.type)
        if not obj.get("choices") and not obj.get("usage"):
            return None  # e.g. Azure's content-filter preamble chunk
        return obj


@dataclass(frozen=True, slots=True)
class CompatibleProvider:
    """One OpenAI-compatible vendor."""

    name: str
    base_url: str | None
    key_env: tuple[str, ...] = ()
    requires_key: bool = True
    requires_base: bool = False
    unsupported: frozenset[str] = frozenset()
    renamed: dict[str, str] = field(default_factory=dict)


COMPATIBLE_PROVIDERS: dict[str, CompatibleProvider] = {
    row.name: row
    for row in (
        CompatibleProvider(
            "groq",
            "https://api.groq.com/openai/v1",
            ("GROQ_API_KEY",),
            unsupported=frozenset({"logit_bias", "logprobs", "top_logprobs"}),
        ),
        CompatibleProvider(
            "mistral",
            "https://api.mistral.ai/v1",
            ("MISTRAL_API_KEY",),
            unsupported=frozenset({"logit_bias", "user", "logprobs", "top_logprobs", "reasoning_effort"}),
            renamed={"max_completion_tokens": "max_tokens", "seed": "random_seed"},
        ),
        CompatibleProvider("deepseek", "https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",)),
        CompatibleProvider(
            "together_ai",
            "https://api.together.xyz/v1",
            ("TOGETHER_AI_API_KEY", "TOGETHERAI_API_KEY", "TOGETHER_API_KEY"),
        ),
        CompatibleProvider(
            "fireworks_ai", "https://api.fireworks.ai/inference/v1", ("FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY")
        ),
        CompatibleProvider("openrouter", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",)),
        CompatibleProvider("perplexity", "https://api.perplexity.ai", ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY")),
        CompatibleProvider("xai", "https://api.x.ai/v1", ("XAI_API_KEY",)),
        CompatibleProvider("ollama", "http://localhost:11434/v1", ("OLLAMA_API_KEY",), requires_key=False),
        CompatibleProvider("hosted_vllm", None, ("HOSTED_VLLM_API_KEY",), requires_key=False, requires_base=True),
        CompatibleProvider("lm_studio", "http://localhost:1234/v1", ("LM_STUDIO_API_KEY",), requires_key=False),
    )
}


class OpenAICompatibleAdapter(OpenAIAdapter):
    """The OpenAI adapter configured by one ``CompatibleProvider`` row."""

    def __init__(self, row: CompatibleProvider) -> None:
        self.row = row

    # Per-instance values shadow the class-level defaults of ProviderAdapter.
    @property
    def name(self) -> str:  # type: ignore[override]
        return self.row.name

    @property
    def default_base_url(self) -> str | None:  # type: ignore[override]
        return self.row.base_url

    @property
    def api_key_env(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.row.key_env

    @property
    def requires_api_key(self) -> bool:  # type: ignore[override]
        return self.row.requires_key

    @property
    def requires_api_base(self) -> bool:  # type: ignore[override]
        return self.row.requires_base

    @property
    def supported_params(self) -> frozenset[str]:  # type: ignore[override]
        return OPENAI_PARAMS - self.row.unsupported

    @property
    def renamed_params(self) -> dict[str, str]:  # type: ignore[override]
        return self.row.renamed
