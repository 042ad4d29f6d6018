"""Cohere Embed v2 (``POST {base}/v2/embed``): at most 96 texts per request; ``input_type`` is required by
the v3+ models and defaults to ``"search_document"`` (LiteLLM's default). Vectors are asked for as floats.
"""

from __future__ import annotations

from typing import Any

from llmplex.exceptions import StreamError
from llmplex.providers.base import Endpoint, HTTPRequest
from llmplex.providers.embedding_base import EmbeddingAdapter, EmbeddingLimits, EmbeddingParsed, EmbeddingRequest

__all__ = ["CohereEmbeddings"]


class CohereEmbeddings(EmbeddingAdapter):
    limits = EmbeddingLimits(max_inputs=96)
    supported_params = frozenset({"dimensions", "encoding_format"})
    default_extra = {"input_type": "search_document"}

    def build_request(self, request: EmbeddingRequest, endpoint: Endpoint) -> HTTPRequest:
        body: dict[str, Any] = {"model": request.model, "texts": request.inputs, "embedding_types": ["float"]}
        if "dimensions" in request.params:
            body["output_dimension"] = request.params["dimensions"]
        body.update(request.extra)
        headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        url = _v2_base(endpoint.base_url) + "/embed"
        return HTTPRequest.post_json(url, {**headers, **endpoint.headers}, body)

    def parse_response(self, body: Any, request: EmbeddingRequest) -> EmbeddingParsed:
        embeddings = body.get("embeddings") if isinstance(body, dict) else None
        if isinstance(embeddings, dict):  # embeddings_by_type
            embeddings = embeddings.get("float")
        if not isinstance(embeddings, list) or len(embeddings) != len(request.inputs):
            raise StreamError("cohere returned an embed body without one float vector per text", body=body)
        meta = body.get("meta") if isinstance(body, dict) else None
        billed = meta.get("billed_units") if isinstance(meta, dict) else None
        tokens = billed.get("input_tokens") if isinstance(billed, dict) else None
        return EmbeddingParsed(list(embeddings), int(tokens) if isinstance(tokens, (int, float)) else None)


def _v2_base(base_url: str) -> str:
    base = base_url.rstrip("/")
    for suffix in ("/v2", "/v1"):
        if base.endswith(suffix):
            return base[: -len(suffix)] + "/v2"
    return base + "/v2"
