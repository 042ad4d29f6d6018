"""Anthropic SSE events -> OpenAI ``chat.completion.chunk`` objects (pure translation, no I/O).

Anthropic numbers *content blocks* (text and tool blocks share the numbering); OpenAI numbers *tool
calls*. The state keeps the block -> tool-call map so fragments land on the right OpenAI index.
Usage arrives split (input on ``message_start``, cumulative output on ``message_delta``) and is
emitted once, last, only when the caller asked for it.
"""

from __future__ import annotations

import time
from typing import Any

from llmplex._sse import SSEEvent
from llmplex.exceptions import StreamError
from llmplex.providers._anthropic_response import JSON_TOOL_NAME, finish_reason, openai_usage
from llmplex.providers._chunks import arguments_json, choice, event_object, role_delta, stream_chunk, usage_chunk
from llmplex.providers.base import StreamState
from llmplex.types import ModelResponseStream, new_completion_id

__all__ = ["AnthropicStreamState", "parse_stream_event"]

PROVIDER = "anthropic"


class AnthropicStreamState(StreamState):
    def __init__(self, model: str, *, include_usage: bool, json_mode: bool) -> None:
        super().__init__(model)
        self.include_usage = include_usage
        self.json_mode = json_mode
        self.usage: dict[str, Any] = {}
        self.tool_index: dict[int, int] = {}  # content-block index -> OpenAI tool-call index
        self.json_blocks: set[int] = set()  # blocks whose tool input is JSON-mode text
        self.started = False
        self.finish_sent = False


def parse_stream_event(event: SSEEvent, state: AnthropicStreamState) -> list[ModelResponseStream]:
    if not event.data:
        return []
    obj = event_object(event.data, PROVIDER)
    kind = obj.get("type") or event.event
    handler = _HANDLERS.get(str(kind))
    return handler(obj, state) if handler is not None else []  # ping and future event types


def _message_start(obj: dict[str, Any], state: AnthropicStreamState) -> list[ModelResponseStream]:
    message = _dict(obj, "message")
    state.response_id = str(message.get("id") or new_completion_id())
    state.model = str(message.get("model") or state.model)
    state.created = int(time.time())
    _merge_usage(state, message.get("usage"))
    return _start(state)


def _start(state: AnthropicStreamState) -> list[ModelResponseStream]:
    if state.started:
        return []
    if not state.response_id:  # a stream that skipped message_start still gets stable ids
        state.response_id = new_completion_id()
        state.created = int(time.time())
    state.started = True
    return [_chunk(state, role_delta())]


def _block_start(obj: dict[str, Any], state: AnthropicStreamState) -> list[ModelResponseStream]:
    chunks = _start(state)
    block = _dict(obj, "content_block")
    index = _int(obj.get("index"))
    kind = block.get("type")
    if kind == "text" and block.get("text"):
        chunks.append(_chunk(state, {"content": str(block["text"])}))
    elif kind == "tool_use" and state.json_mode and block.get("name") == JSON_TOOL_NAME:
        state.json_blocks.add(index)
    elif kind == "tool_use":
        tool_index = len(state.tool_index)
        state.tool_index[index] = tool_index
        initial = block.get("input")
        arguments = arguments_json(initial) if initial else ""
        call = {"index": tool_index, "id": block.get("id"), "type": "function"}
        call["function"] = {"name": block.get("name"), "arguments": arguments}
        chunks.append(_chunk(state, {"tool_calls": [call]}))
    return chunks


def _block_delta(obj: dict[str, Any], state: AnthropicStreamState) -> list[ModelResponseStream]:
    chunks = _start(state)
    delta = _dict(obj, "delta")
    index = _int(obj.get("index"))
    kind = delta.get("type")
    if kind == "text_delta" and delta.get("text"):
        chunks.append(_chunk(state, {"content": str(delta["text"])}))
    elif kind == "input_json_delta" and delta.get("partial_json"):
        fragment = str(delta["partial_json"])
        if index in state.json_blocks:
            chunks.append(_chunk(state, {"content": fragment}))
        elif index in state.tool_index:
            call = {"index": state.tool_index[index], "function": {"arguments": fragment}}
            chunks.append(_chunk(state, {"tool_calls": [call]}))
    elif kind == "thinking_delta" and delta.get("thinking"):
        chunks.append(_chunk(state, {"reasoning_content": str(delta["thinking"])}))
    # signature_delta and citations_delta have no OpenAI equivalent
    return chunks


def _message_delta(obj: dict[str, Any], state: AnthropicStreamState) -> list[ModelResponseStream]:
    chunks = _start(state)
    _merge_usage(state, obj.get("usage"))
    delta = _dict(obj, "delta")
    stop_reason = delta.get("stop_reason")
    if stop_reason is not None and not state.finish_sent:
        chunks.append(_finish(state, stop_reason))
    return chunks


def _message_stop(obj: dict[str, Any], state: AnthropicStreamState) -> list[ModelResponseStream]:
    chunks = _start(state)
    if not state.finish_sent:
        chunks.append(_finish(state, "end_turn"))
    if state.include_usage:
        chunks.append(usage_chunk(state, openai_usage(state.usage), system_fingerprint=None))
    state.finished = True
    return chunks


def _error(obj: dict[str, Any], state: AnthropicStreamState) -> list[ModelResponseStream]:
    err = _dict(obj, "error")
    kind = str(err.get("type") or "api_error")
    message = str(err.get("message") or kind)
    raise StreamError(f"anthropic stream error ({kind}): {message}", provider=PROVIDER, body=obj, type=kind, code=kind)


def _ignore(obj: dict[str, Any], state: AnthropicStreamState) -> list[ModelResponseStream]:
    return []


_HANDLERS = {
    "message_start": _message_start,
    "content_block_start": _block_start,
    "content_block_delta": _block_delta,
    "content_block_stop": _ignore,
    "message_delta": _message_delta,
    "message_stop": _message_stop,
    "ping": _ignore,
    "error": _error,
}


def _finish(state: AnthropicStreamState, stop_reason: Any) -> ModelResponseStream:
    state.finish_sent = True
    reason = finish_reason(stop_reason, has_tool_calls=bool(state.tool_index))
    return _chunk(state, {}, reason)


def _merge_usage(state: AnthropicStreamState, usage: Any) -> None:
    # message_delta repeats fields with final (cumulative) values: later values win
    if isinstance(usage, dict):
        state.usage.update({key: value for key, value in usage.items() if isinstance(value, int)})


def _chunk(state: AnthropicStreamState, delta: dict[str, Any], reason: str | None = None) -> ModelResponseStream:
    # with OpenAI's explicit nulls (system_fingerprint, logprobs), which this adapter has always sent
    return stream_chunk(state, [choice(delta, reason, logprobs=None)], system_fingerprint=None)


def _dict(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) else -1
