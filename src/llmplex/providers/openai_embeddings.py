"""Embeddings in the OpenAI wire format (``POST {base}/embeddings``): OpenAI, Azure and the OpenAI-compatible
vendors that serve embeddings, each a row of limits in ``EMBEDDING_ROWS``.

Limits: OpenAI and Azure take 2,048 inputs and 300,000 tokens per request. The other rows' limits are the
vendors' documented (or, where undocumented, conservative) values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from llmplex.exceptions import BadRequestError, StreamError
from llmplex.providers.azure import DEFAULT_API_VERSION
from llmplex.providers.base import Endpoint, HTTPRequest, ProviderAdapter
from llmplex.providers.embedding_base import EmbeddingAdapter, EmbeddingLimits, EmbeddingParsed, EmbeddingRequest
from llmplex.providers.openai_compat import OpenAIAdapter

__all__ = ["EMBEDDING_ROWS", "AzureEmbeddings", "EmbeddingRow", "OpenAIEmbeddings"]

_OPENAI_PARAMS = frozenset({"dimensions", "encoding_format", "user"})


@dataclass(frozen=True, slots=True)
class EmbeddingRow:
    limits: EmbeddingLimits
    params: frozenset[str] = _OPENAI_PARAMS
    renamed: dict[str, str] = field(default_factory=dict)
    token_arrays: bool = True


_OPENAI_LIMITS = EmbeddingLimits(max_inputs=2048, max_tokens=300_000)

EMBEDDING_ROWS: dict[str, EmbeddingRow] = {
    "openai": EmbeddingRow(_OPENAI_LIMITS),
    "azure": EmbeddingRow(_OPENAI_LIMITS),
    "mistral": EmbeddingRow(
        EmbeddingLimits(max_inputs=512, max_tokens=16_384),
        params=frozenset({"dimensions", "encoding_format"}),
        renamed={"dimensions": "output_dimension"},
        token_arrays=False,
    ),
    "together_ai": EmbeddingRow(EmbeddingLimits(max_inputs=2048), token_arrays=False),
    "fireworks_ai": EmbeddingRow(EmbeddingLimits(max_inputs=256), token_arrays=False),
    "ollama": EmbeddingRow(EmbeddingLimits(max_inputs=2048), params=frozenset({"dimensions"}), token_arrays=False),
    "hosted_vllm": EmbeddingRow(EmbeddingLimits(max_inputs=2048)),
    "lm_studio": EmbeddingRow(EmbeddingLimits(max_inputs=2048), params=frozenset(), token_arrays=False),
}


class OpenAIEmbeddings(EmbeddingAdapter):
    def __init__(self, chat: ProviderAdapter, row: EmbeddingRow) -> None:
        super().__init__(chat)
        self.row = row
        self.limits = row.limits
        self.supported_params = row.params
        self.native_base64 = "encoding_format" in row.params
        self.accepts_token_arrays = row.token_arrays

    def url(self, request: EmbeddingRequest, endpoint: Endpoint) -> str:
        return endpoint.base_url.rstrip("/") + "/embeddings"

    def build_request(self, request: EmbeddingRequest, endpoint: Endpoint) -> HTTPRequest:
        body: dict[str, Any] = {"model": request.model, "input": request.inputs}
        renamed = self.row.renamed
        for key, value in request.params.items():
            body[renamed.get(key, key)] = value
        body.update(request.extra)
        chat = self.chat
        auth = chat.auth_headers(endpoint) if isinstance(chat, OpenAIAdapter) else {}
        return HTTPRequest.post_json(self.url(request, endpoint), {**auth, **endpoint.headers}, body)

    def parse_response(self, body: Any, request: EmbeddingRequest) -> EmbeddingParsed:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or len(data) != len(request.inputs):
            raise StreamError(f"{self.name} returned an embeddings body without one vector per input", body=body)
        vectors: list[Any] = [None] * len(data)
        for position, item in enumerate(data):
            index = item.get("index", position) if isinstance(item, dict) else None
            if (
                not isinstance(index, int)
                or not 0 <= index < len(data)
                or not isinstance(item.get("embedding"), (list, str))
            ):
                raise StreamError(f"{self.name} returned an unreadable embedding item", body=body)
            vectors[index] = item["embedding"]
        usage = body.get("usage")
        tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        return EmbeddingParsed(vectors, tokens if isinstance(tokens, int) else None)


class AzureEmbeddings(OpenAIEmbeddings):
    def url(self, request: EmbeddingRequest, endpoint: Endpoint) -> str:
        base = endpoint.base_url.rstrip("/")
        if not base:
            raise BadRequestError("azure needs api_base (e.g. https://<resource>.openai.azure.com)", provider="azure")
        if base.endswith("/openai"):
            base = base[: -len("/openai")]
        version = quote(endpoint.api_version or DEFAULT_API_VERSION, safe="")
        return f"{base}/openai/deployments/{quote(request.model, safe='')}/embeddings?api-version={version}"
