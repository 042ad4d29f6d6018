"""Answering an Anthropic Messages request with any model: ``messages(client, model, body, ...)``.

To an Anthropic model the body is relayed as is (only ``model`` is replaced by the provider's model id), and
the answer's bytes come back untouched, streams included: no lossy round trip through the OpenAI shape, and
``thinking``, cache control or beta features pass through. Any other model gets the body translated to an
OpenAI chat request (``messages_format``), and the answer (or stream, ``messages_stream``) translated back.
``count_tokens`` asks Anthropic's counting endpoint, or estimates for other providers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from llmplex._request import CALL_SETTINGS, ResolvedCall, resolve_call
from llmplex._streaming import CompletionStream
from llmplex._transport import RawStream
from llmplex.exceptions import StreamError
from llmplex.messages_format import estimate_input_tokens, openai_to_anthropic_response, to_openai_request
from llmplex.messages_stream import AnthropicStreamTranslator, encode_event
from llmplex.providers.base import HTTPRequest
from llmplex.relayed import RelayedChunk
from llmplex.types import ModelResponse

if TYPE_CHECKING:
    from llmplex.client import AsyncClient

__all__ = ["MessagesAnswer", "MessagesStream", "count_tokens", "messages"]

# request headers of the caller's that an Anthropic upstream should see
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")
_CONTENT_EVENT = b"content_block_delta"
_STOP_EVENT = b"message_stop"
_ERROR_EVENT = b"event: error"


@dataclass(slots=True)
class MessagesAnswer:
    """A whole answer (``body``: Anthropic message JSON) or a ``stream`` of Anthropic SSE bytes."""

    provider: str
    body: bytes | None = None
    stream: MessagesStream | None = None
    usage: dict[str, int] = field(default_factory=dict)  # input_tokens / output_tokens when known
    hidden: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


class MessagesStream:
    """Anthropic SSE bytes from a relayed or a translated stream; ``peek_first_content`` reads ahead (racing)."""

    def __init__(self, source: AsyncIterator[tuple[bytes, bool]], closer: Any) -> None:
        self._source = source  # (bytes, carries content)
        self._closer = closer
        self._buffer: list[bytes] = []
        self._content = False

    async def peek_first_content(self) -> None:
        """Read until content (a ``content_block_delta``) is buffered; raises if the stream ends without any."""
        while not self._content:
            try:
                data, content = await self._source.__anext__()
            except StopAsyncIteration:
                raise StreamError("the stream ended without content") from None
            self._buffer.append(data)
            self._content = content

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        if self._buffer:
            buffered, self._buffer = b"".join(self._buffer), []
            yield buffered
        async for data, _ in self._source:
            yield data

    def close(self) -> None:
        self._closer()


async def messages(
    client: AsyncClient,
    model: str,
    body: dict[str, Any],
    settings: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
) -> MessagesAnswer:
    """Answer a validated Messages ``body`` with ``model`` (``settings``: credentials and call settings)."""
    call = _resolve(client, model, settings)
    if call.adapter.name == "anthropic":
        return await _relay(client, call, body, headers or {}, "/messages")
    return await _translated(client, model, body, settings)


async def count_tokens(
    client: AsyncClient,
    model: str,
    body: dict[str, Any],
    settings: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """``{"input_tokens": n}``: Anthropic's own count for its models, an estimate for the others."""
    call = _resolve(client, model, settings)
    if call.adapter.name == "anthropic":
        answer = await _relay(client, call, body, headers or {}, "/messages/count_tokens")
        assert answer.body is not None
        return answer.body
    return orjson.dumps({"input_tokens": estimate_input_tokens(body)})


def _resolve(client: AsyncClient, model: str, settings: Mapping[str, Any]) -> ResolvedCall:
    only_settings = {k: v for k, v in settings.items() if k in CALL_SETTINGS}
    return resolve_call(model, [{"role": "user", "content": ""}], only_settings, client.config)


async def _relay(
    client: AsyncClient, call: ResolvedCall, body: dict[str, Any], headers: Mapping[str, str], path: str
) -> MessagesAnswer:
    # imported here: the adapter's modules load when the first Anthropic call is resolved, not with the proxy
    from llmplex.providers.anthropic import API_VERSION, AnthropicAdapter

    adapter = call.adapter
    assert isinstance(adapter, AnthropicAdapter) and call.endpoint is not None
    endpoint = call.endpoint
    model_id = call.request.model
    url = adapter.messages_url(endpoint).removesuffix("/messages") + path
    out_headers = {"content-type": "application/json", "anthropic-version": API_VERSION}
    for name in FORWARDED_HEADERS:
        if headers.get(name):
            out_headers[name] = headers[name]
    if endpoint.api_key:
        out_headers["x-api-key"] = endpoint.api_key
    out_headers.update(endpoint.headers)
    stream = bool(body.get("stream")) and path == "/messages"
    if stream:
        out_headers["accept"] = "text/event-stream"
    http = HTTPRequest("POST", url, out_headers, orjson.dumps({**body, "model": model_id}))
    hidden = {**call.hidden, "api_base": endpoint.base_url}
    if stream:
        raw = await client.open_raw_stream(http, adapter, model_id, timeout=call.timeout, num_retries=call.num_retries)
        return MessagesAnswer(adapter.name, stream=MessagesStream(_raw_source(raw), raw.close), hidden=hidden)
    data, parsed = await client.send_json(http, adapter, model_id, timeout=call.timeout, num_retries=call.num_retries)
    usage = parsed.get("usage") if isinstance(parsed, dict) else None
    counts = {k: v for k, v in usage.items() if isinstance(v, int)} if isinstance(usage, dict) else {}
    return MessagesAnswer(adapter.name, body=data, usage=counts, hidden=hidden)


async def _raw_source(raw: RawStream) -> AsyncIterator[tuple[bytes, bool]]:
    ended = False  # an Anthropic stream ends with message_stop (or an error event); without it, it was cut short
    tail = b""
    try:
        while data := await raw.read_chunk():
            seen = tail + data  # an event name split across two reads
            ended = ended or _STOP_EVENT in seen or _ERROR_EVENT in seen
            tail = data[-32:]
            yield data, _CONTENT_EVENT in data
    finally:
        raw.close()
    if not ended:  # relayed as a clean end, the client would take a truncated answer for a whole one
        raise StreamError("the upstream's stream ended before message_stop")


async def _translated(
    client: AsyncClient, model: str, body: dict[str, Any], settings: Mapping[str, Any]
) -> MessagesAnswer:
    request = to_openai_request(body)
    request.pop("model")
    messages_ = request.pop("messages")
    options = {**settings, **request}
    call = resolve_call(model, messages_, options, client.config)
    result = await client.run_call(call, relay=True)
    public_model = str(body["model"])
    if isinstance(result, CompletionStream):
        translator = AnthropicStreamTranslator(public_model)
        source = _translated_source(result, translator)
        return MessagesAnswer(
            call.adapter.name, stream=MessagesStream(source, result.close), hidden=result.hidden_params
        )
    answer = result.as_dict() if not isinstance(result, ModelResponse) else result.model_dump()
    message = openai_to_anthropic_response(answer, public_model)
    usage = {"input_tokens": message["usage"]["input_tokens"], "output_tokens": message["usage"]["output_tokens"]}
    return MessagesAnswer(call.adapter.name, body=orjson.dumps(message), usage=usage, hidden=result.hidden_params)


async def _translated_source(
    stream: CompletionStream, translator: AnthropicStreamTranslator
) -> AsyncIterator[tuple[bytes, bool]]:
    try:
        try:
            while chunks := await stream.next_batch():
                out: list[bytes] = []
                content = False
                for chunk in chunks:
                    obj = chunk.as_dict() if isinstance(chunk, RelayedChunk) else chunk.model_dump()
                    for name, payload in translator.feed(obj):
                        content = content or name == "content_block_delta"
                        out.append(encode_event(name, payload))
                if out:
                    yield b"".join(out), content
        except Exception as exc:  # after the stream started: Anthropic's mid-stream error event, then the end
            status = getattr(exc, "status_code", None) or 500
            name, payload = AnthropicStreamTranslator.error(status, str(exc) or type(exc).__name__)
            yield encode_event(name, payload), False
            return
        yield b"".join(encode_event(name, payload) for name, payload in translator.finish()), False
    finally:
        stream.close()
