"""Turning ``embedding(model, input, ...)`` arguments into a resolved call and its split plan: pure, no I/O.

The input is normalised to a list (a string, a list of strings, one token array or a list of token arrays),
checked (no empty input, no non-string items, ``encoding_format`` "float" or "base64"), and cut into parts
that fit the provider's per-request limits (input count and an estimated token budget), in input order.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmplex._request import CALL_SETTINGS, resolve_call
from llmplex.config import ClientConfig
from llmplex.exceptions import BadRequestError, UnsupportedParamsError
from llmplex.providers import resolve_model
from llmplex.providers.base import Endpoint
from llmplex.providers.capabilities import embedding_adapter
from llmplex.providers.embedding_base import EmbeddingAdapter, EmbeddingRequest

__all__ = [
    "ENCODING_FORMATS",
    "EmbeddingCall",
    "estimate_input_tokens",
    "floats_to_base64",
    "normalize_input",
    "resolve_embedding",
    "split_parts",
]

ENCODING_FORMATS = ("float", "base64")
_CHARS_PER_TOKEN = 4


@dataclass(slots=True)
class EmbeddingCall:
    """One model's embedding call, resolved; ``parts`` are ``(start, end)`` ranges of ``inputs``."""

    label: str
    adapter: EmbeddingAdapter
    model: str  # the provider's model id
    inputs: list[Any]
    params: dict[str, Any]
    extra: dict[str, Any]
    endpoint: Endpoint
    timeout: float
    num_retries: int
    base64_locally: bool  # the caller wants base64 and the provider only sends floats
    parts: list[tuple[int, int]] = field(default_factory=list)

    def part_request(self, part: int) -> EmbeddingRequest:
        start, end = self.parts[part]
        return EmbeddingRequest(self.model, self.inputs[start:end], self.params, self.extra)

    def part_tokens(self, part: int) -> int:
        start, end = self.parts[part]
        return sum(estimate_input_tokens(item) for item in self.inputs[start:end])


def normalize_input(value: Any) -> tuple[list[Any], bool]:
    """``(inputs, are_token_arrays)``; raises ``BadRequestError`` for empty or mistyped input."""
    if isinstance(value, str):
        if not value:
            raise BadRequestError("input must not be an empty string", param="input")
        return [value], False
    if not isinstance(value, list) or not value:
        raise BadRequestError(
            "input must be a non-empty string, a non-empty list of strings, or token arrays", param="input"
        )
    if all(_is_token(v) for v in value):
        return [value], True
    if all(isinstance(v, list) for v in value):
        for i, item in enumerate(value):
            if not item or not all(_is_token(v) for v in item):
                raise BadRequestError(f"input[{i}] must be a non-empty array of token ids", param="input")
        return list(value), True
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise BadRequestError(f"input[{i}] must be a string, got {type(item).__name__}", param="input")
        if not item:
            raise BadRequestError(f"input[{i}] must not be an empty string", param="input")
    return list(value), False


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def estimate_input_tokens(item: Any) -> int:
    """Tokens of one input: a token array's length, or text length / 4 rounded up (never under 1)."""
    if isinstance(item, list):
        return len(item)
    return len(item) // _CHARS_PER_TOKEN + 1


def split_parts(inputs: list[Any], max_inputs: int, max_tokens: int | None) -> list[tuple[int, int]]:
    """Consecutive ranges of at most ``max_inputs`` items and (estimated) ``max_tokens`` tokens each."""
    count = len(inputs)
    if count <= max_inputs and (max_tokens is None or _tokens_bound(inputs) <= max_tokens):
        return [(0, count)]  # the common case: one request
    if max_tokens is None:
        return [(start, min(start + max_inputs, count)) for start in range(0, count, max_inputs)]
    parts: list[tuple[int, int]] = []
    start, tokens = 0, 0
    for index, item in enumerate(inputs):
        cost = estimate_input_tokens(item)
        if index > start and (index - start >= max_inputs or tokens + cost > max_tokens):
            parts.append((start, index))
            start, tokens = index, 0
        tokens += cost
    parts.append((start, len(inputs)))
    return parts


def _tokens_bound(inputs: list[Any]) -> int:
    """At least the sum of ``estimate_input_tokens`` over ``inputs``, computed without a call per item."""
    total = sum(map(len, inputs))
    return total if inputs and isinstance(inputs[0], list) else total // _CHARS_PER_TOKEN + len(inputs)


def floats_to_base64(vector: list[float]) -> str:
    """OpenAI's base64 form: the values as little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def resolve_embedding(
    model: str, inputs: list[Any], token_arrays: bool, options: Mapping[str, Any], config: ClientConfig
) -> EmbeddingCall:
    """Resolve one model's call; raises typed errors before any request."""
    provider, model_id = resolve_model(model, custom_llm_provider=options.get("custom_llm_provider"))
    adapter = embedding_adapter(provider)
    if token_arrays and not adapter.accepts_token_arrays:
        raise UnsupportedParamsError(
            f"{adapter.name} embeddings take text, not token arrays", provider=adapter.name, param="input"
        )
    settings = {k: v for k, v in options.items() if k in CALL_SETTINGS and k not in ("mock_response", "mock_delay")}
    base = resolve_call(model, [{"role": "user", "content": ""}], settings, config)
    assert base.endpoint is not None
    drop = options.get("drop_params")
    drop_params = config.drop_params if drop is None else bool(drop)
    params, extra, base64_locally = _split_params(adapter, model_id, options, drop_params)
    call = EmbeddingCall(
        label=model,
        adapter=adapter,
        model=model_id,
        inputs=inputs,
        params=params,
        extra=extra,
        endpoint=base.endpoint,
        timeout=base.timeout,
        num_retries=base.num_retries,
        base64_locally=base64_locally,
    )
    call.parts = split_parts(inputs, adapter.limits.max_inputs, adapter.limits.max_tokens)
    return call


def _split_params(
    adapter: EmbeddingAdapter, model_id: str, options: Mapping[str, Any], drop_params: bool
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    params: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    base64_locally = False
    for key, value in options.items():
        if value is None or key in CALL_SETTINGS:
            continue
        if key == "encoding_format":
            if value not in ENCODING_FORMATS:
                raise BadRequestError(
                    f"encoding_format must be 'float' or 'base64', got {value!r}", param="encoding_format"
                )
            if adapter.native_base64:
                params[key] = value
            else:
                base64_locally = value == "base64"
        elif key in ("dimensions", "user"):
            if _standard_param(adapter, model_id, key, value, drop_params):
                params[key] = value
        elif key == "extra_body":
            if not isinstance(value, dict):
                raise BadRequestError("extra_body must be a dict", param="extra_body")
            extra.update(value)
        else:
            extra[key] = value
    for key, value in adapter.default_extra.items():
        extra.setdefault(key, value)
    return params, extra, base64_locally


def _standard_param(adapter: EmbeddingAdapter, model_id: str, key: str, value: Any, drop_params: bool) -> bool:
    """Whether to send ``key``; raises for a bad ``dimensions`` or an unsupported one not to be dropped."""
    if key == "dimensions" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise BadRequestError(f"dimensions must be a positive integer, got {value!r}", param="dimensions")
    if key in adapter.supported_params:
        return True
    if drop_params:
        return False
    raise UnsupportedParamsError(
        f"{adapter.name} embeddings do not support parameter '{key}'. Pass drop_params=True to drop it.",
        provider=adapter.name,
        model=model_id,
        param=key,
    )
