"""Gemini ``POST {base}/v1beta/models/{model}:batchEmbedContents``: at most 100 requests per call, one text
each; ``dimensions`` -> ``outputDimensionality``, ``task_type`` / ``taskType`` passed on each request. Gemini
reports no token counts (the caller estimates them).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from llmplex.exceptions import StreamError
from llmplex.providers.base import Endpoint, HTTPRequest
from llmplex.providers.embedding_base import EmbeddingAdapter, EmbeddingLimits, EmbeddingParsed, EmbeddingRequest
from llmplex.providers.gemini import API_VERSION

__all__ = ["GeminiEmbeddings"]

# per-request fields LiteLLM users pass in snake case
_PER_REQUEST = {"task_type": "taskType", "taskType": "taskType", "title": "title"}


class GeminiEmbeddings(EmbeddingAdapter):
    limits = EmbeddingLimits(max_inputs=100)
    supported_params = frozenset({"dimensions", "encoding_format"})

    def build_request(self, request: EmbeddingRequest, endpoint: Endpoint) -> HTTPRequest:
        model = request.model.removeprefix("models/")
        shared: dict[str, Any] = {"model": f"models/{model}"}
        if "dimensions" in request.params:
            shared["outputDimensionality"] = request.params["dimensions"]
        body_extra: dict[str, Any] = {}
        for key, value in request.extra.items():
            if key in _PER_REQUEST:
                shared[_PER_REQUEST[key]] = value
            else:
                body_extra[key] = value
        requests = [{**shared, "content": {"parts": [{"text": text}]}} for text in request.inputs]
        base = endpoint.base_url.rstrip("/")
        if not base.endswith(("/v1beta", "/v1", "/v1alpha")):
            base += "/" + API_VERSION
        headers = {"x-goog-api-key": endpoint.api_key} if endpoint.api_key else {}
        url = f"{base}/models/{quote(model, safe='')}:batchEmbedContents"
        return HTTPRequest.post_json(url, {**headers, **endpoint.headers}, {"requests": requests, **body_extra})

    def parse_response(self, body: Any, request: EmbeddingRequest) -> EmbeddingParsed:
        embeddings = body.get("embeddings") if isinstance(body, dict) else None
        if not isinstance(embeddings, list) or len(embeddings) != len(request.inputs):
            raise StreamError("gemini returned a batchEmbedContents body without one embedding per text", body=body)
        vectors = []
        for item in embeddings:
            values = item.get("values") if isinstance(item, dict) else None
            if not isinstance(values, list):
                raise StreamError("gemini returned an embedding without values", body=body)
            vectors.append(values)
        return EmbeddingParsed(vectors, None)
