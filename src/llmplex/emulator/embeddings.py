"""Embeddings in each provider's wire format: OpenAI / Azure ``/embeddings``, Cohere ``/v2/embed``, Gemini
``:batchEmbedContents``. Each reuses its chat dialect's auth and native errors and rides the same request
pipeline (directives such as ``delay-50`` or ``status-429`` in the model name work as for chat).

Vectors are deterministic: a hash of the input text, so a client that splits a list and puts it back
together can be checked item by item. Token counts are ``ceil(len(text) / 4)`` per input (at least 1).
The per-request input limits are the real ones (OpenAI/Azure 2,048 inputs and 300,000 tokens, Cohere 96
texts, Gemini 100 requests): a client that does not split gets the provider's own 400.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import uuid
from typing import Any

import orjson

from llmplex.emulator.azure import AzureDialect
from llmplex.emulator.cohere import CohereDialect
from llmplex.emulator.conversation import Conversation, Reply
from llmplex.emulator.dialect import Failure, Incoming, StreamPlan
from llmplex.emulator.gemini import GeminiDialect, split_target
from llmplex.emulator.openai import OpenAIDialect

__all__ = [
    "AzureEmbeddingDialect",
    "CohereEmbedDialect",
    "GeminiEmbedDialect",
    "OpenAIEmbeddingDialect",
    "embedding_vector",
    "text_tokens",
]

DEFAULT_DIMENSIONS = 8
MAX_DIMENSIONS = 4096
OPENAI_MAX_INPUTS = 2048
OPENAI_MAX_TOKENS = 300_000
COHERE_MAX_TEXTS = 96
GEMINI_MAX_REQUESTS = 100


def embedding_vector(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """The emulated embedding of ``text``: values in [-1, 1] from a hash of it (float32-exact)."""
    digest = hashlib.blake2b(text.encode(), digest_size=64).digest()
    while len(digest) < dimensions:
        digest += hashlib.blake2b(digest, digest_size=64).digest()
    return [(byte - 128) / 128 for byte in digest[:dimensions]]


def text_tokens(text: str) -> int:
    return max(1, -(-len(text) // 4))


def _token_array_text(tokens: list[Any]) -> str:
    return " ".join(str(t) for t in tokens)


def _openai_inputs(value: Any) -> list[str] | None:
    """Each input as text (token arrays as their numbers), or None when the shape is wrong."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [_token_array_text(value)]
    out = []
    for item in value:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, list) and item and all(isinstance(v, int) for v in item):
            out.append(_token_array_text(item))
        else:
            return None
    return out


def _dimensions(payload: dict[str, Any], key: str) -> int | None:
    value = payload.get(key, DEFAULT_DIMENSIONS)
    if value is None:
        return DEFAULT_DIMENSIONS
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_DIMENSIONS:
        return None
    return value


class _NoStream:
    def wants_stream(self, incoming: Incoming, payload: dict[str, Any]) -> bool:
        return False

    def stream(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> StreamPlan:
        raise NotImplementedError("embeddings do not stream")


class OpenAIEmbeddingDialect(_NoStream, OpenAIDialect):
    """``POST /v1/embeddings``: ``{"object": "list", "data": [...], "model", "usage"}``; base64 on request."""

    def validate(self, payload: dict[str, Any]) -> Failure | None:
        if not isinstance(payload.get("model"), str):
            return self._error(400, "invalid_request_error", None, "you must provide a model parameter")
        return self.validate_input(payload)

    def validate_input(self, payload: dict[str, Any]) -> Failure | None:
        if "input" not in payload:
            return self._error(400, "invalid_request_error", None, "Missing required parameter: 'input'.", "input")
        inputs = _openai_inputs(payload["input"])
        if inputs is None:
            return self._error(400, "invalid_request_error", None, "'$.input' is invalid.", "input")
        if len(inputs) > OPENAI_MAX_INPUTS:
            message = f"Invalid 'input': maximum input length is {OPENAI_MAX_INPUTS}."
            return self._error(400, "invalid_request_error", None, message, "input")
        tokens = sum(text_tokens(t) for t in inputs)
        if tokens > OPENAI_MAX_TOKENS:
            message = f"Requested {tokens} tokens, max {OPENAI_MAX_TOKENS} tokens per request"
            return self._error(400, "invalid_request_error", "max_tokens_per_request", message, None)
        if payload.get("encoding_format", "float") not in ("float", "base64"):
            message = "Invalid value for 'encoding_format': expected 'float' or 'base64'."
            return self._error(400, "invalid_request_error", None, message, "encoding_format")
        if _dimensions(payload, "dimensions") is None:
            return self._error(400, "invalid_request_error", None, "Invalid 'dimensions'.", "dimensions")
        return None

    def conversation(self, payload: dict[str, Any]) -> Conversation:
        inputs = _openai_inputs(payload["input"]) or []
        return Conversation("", sum(text_tokens(t) for t in inputs), None)

    def completion(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> bytes:
        inputs = _openai_inputs(payload["input"]) or []
        dimensions = _dimensions(payload, "dimensions") or DEFAULT_DIMENSIONS
        as_base64 = payload.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(inputs):
            vector = embedding_vector(text, dimensions)
            embedding: Any = _base64(vector) if as_base64 else vector
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        usage = {"prompt_tokens": reply.prompt_tokens, "total_tokens": reply.prompt_tokens}
        return orjson.dumps({"object": "list", "data": data, "model": reply.model, "usage": usage})


def _base64(vector: list[float]) -> str:
    # OpenAI's base64 form: the float32 values, little-endian
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


class AzureEmbeddingDialect(OpenAIEmbeddingDialect, AzureDialect):
    """``POST /openai/deployments/{deployment}/embeddings?api-version=...``: the deployment names the model."""

    def validate(self, payload: dict[str, Any]) -> Failure | None:
        return self.validate_input(payload)

    def model_name(self, incoming: Incoming, payload: dict[str, Any]) -> str:
        return AzureDialect.model_name(self, incoming, payload)


class CohereEmbedDialect(_NoStream, CohereDialect):
    """``POST /v2/embed``: ``texts`` (at most 96), ``input_type`` required, ``embeddings_by_type`` answers."""

    def validate(self, payload: dict[str, Any]) -> Failure | None:
        if not isinstance(payload.get("model"), str):
            return self.failure(400, "invalid request: model must be specified")
        texts = payload.get("texts")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return self.failure(400, "invalid request: texts must be a non-empty list of strings")
        if len(texts) > COHERE_MAX_TEXTS:
            limit = f"at most {COHERE_MAX_TEXTS} - received {len(texts)}"
            return self.failure(400, f"invalid request: total number of texts must be {limit}")
        if not isinstance(payload.get("input_type"), str):
            return self.failure(400, "invalid request: valid input_type must be provided with the provided model")
        if _dimensions(payload, "output_dimension") is None:
            return self.failure(400, "invalid request: output_dimension is not valid")
        return None

    def conversation(self, payload: dict[str, Any]) -> Conversation:
        return Conversation("", sum(text_tokens(t) for t in payload["texts"]), None)

    def completion(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> bytes:
        texts: list[str] = payload["texts"]
        dimensions = _dimensions(payload, "output_dimension") or DEFAULT_DIMENSIONS
        types = payload.get("embedding_types") or ["float"]
        vectors = [embedding_vector(t, dimensions) for t in texts]
        embeddings = {kind: vectors for kind in types if kind == "float"}
        body = {
            "id": str(uuid.uuid4()),
            "embeddings": embeddings,
            "texts": texts,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": reply.prompt_tokens}},
            "response_type": "embeddings_by_type",
        }
        return orjson.dumps(body)


class GeminiEmbedDialect(_NoStream, GeminiDialect):
    """``POST /v1beta/models/{model}:batchEmbedContents``: at most 100 ``requests``; no token counts returned."""

    def authenticate(self, incoming: Incoming) -> Failure | None:
        key = incoming.headers.get("x-goog-api-key") or incoming.query.get("key")
        if not key or key == "bad-key":
            return super().authenticate(incoming)  # Google's own API_KEY_INVALID answer
        if split_target(incoming)[1] != "batchEmbedContents":
            return self.failure(404, "Method not found.")
        return None

    def validate(self, payload: dict[str, Any]) -> Failure | None:
        requests = payload.get("requests")
        if not isinstance(requests, list) or not requests:
            return self.failure(400, "* BatchEmbedContentsRequest.requests: requests is not specified\n")
        if len(requests) > GEMINI_MAX_REQUESTS:
            limit = f"at most {GEMINI_MAX_REQUESTS} requests can be in one batch"
            return self.failure(400, f"* BatchEmbedContentsRequest.requests: {limit}\n")
        for request in requests:
            if _request_text(request) is None:
                return self.failure(400, "* BatchEmbedContentsRequest.requests[].content: content is not specified\n")
            if not isinstance(request, dict) or _dimensions(request, "outputDimensionality") is None:
                return self.failure(400, "* outputDimensionality is not valid\n")
        return None

    def conversation(self, payload: dict[str, Any]) -> Conversation:
        return Conversation("", 0, None)

    def completion(self, reply: Reply, incoming: Incoming, payload: dict[str, Any]) -> bytes:
        embeddings = []
        for request in payload["requests"]:
            dimensions = _dimensions(request, "outputDimensionality") or DEFAULT_DIMENSIONS
            embeddings.append({"values": embedding_vector(_request_text(request) or "", dimensions)})
        return orjson.dumps({"embeddings": embeddings})


def _request_text(request: Any) -> str | None:
    content = request.get("content") if isinstance(request, dict) else None
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not parts:
        return None
    texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return " ".join(texts) if texts else None
