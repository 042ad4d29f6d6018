"""Drive a provider adapter with recorded payloads, as the client would, without a network.

Shared by the per-provider translation tests; each keeps only its own recordings and wire quirks.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmplex._sse import SSEDecoder
from llmplex._transport import status_error
from llmplex.exceptions import APIStatusError
from llmplex.providers.base import CompletionRequest, Endpoint, ProviderAdapter
from llmplex.types import ModelResponseStream

# events split across network reads must not matter, so streams are fed in small uneven pieces
READ_SIZE = 37


def request_body(adapter: ProviderAdapter, request: CompletionRequest, endpoint: Endpoint) -> dict[str, Any]:
    """The JSON body the adapter would send."""
    http = adapter.build_request(request, endpoint)
    assert http.body is not None
    result: dict[str, Any] = orjson.loads(http.body)
    return result


def stream_request(
    model: str, *, include_usage: bool = False, messages: list[dict[str, Any]] | None = None, **params: Any
) -> CompletionRequest:
    """A streamed request as the client would hand it to the adapter."""
    if include_usage:
        params["stream_options"] = {"include_usage": True}
    return CompletionRequest(model=model, messages=messages or [], stream=True, params=params)


def run_stream(
    adapter: ProviderAdapter, request: CompletionRequest, raw: bytes
) -> tuple[list[ModelResponseStream], bool]:
    """Feed raw SSE bytes through the real decoder and the adapter, as the stream driver does.

    Returns the chunks and whether the adapter saw the provider's terminal event.
    """
    state = adapter.new_stream_state(request)
    decoder = SSEDecoder()
    chunks: list[ModelResponseStream] = []
    pieces = [raw[start : start + READ_SIZE] for start in range(0, len(raw), READ_SIZE)]
    events = [event for piece in pieces for event in decoder.feed(piece)]
    for event in [*events, *decoder.flush()]:
        if state.finished:  # the driver stops reading at the terminal event
            break
        chunks.extend(adapter.parse_event(event, state))
    return chunks, state.finished


def native_error(
    adapter: ProviderAdapter, model: str, status: int, body: Any, headers: dict[str, str] | None = None
) -> APIStatusError:
    """The typed error the client raises for this status and native error body (bytes are sent as they are)."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return status_error(status, raw, headers or {}, adapter, model)
