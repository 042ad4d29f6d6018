"""Anthropic adapter, streaming: recorded SSE streams -> OpenAI chunks (pure translation)."""

# Recorded SSE streams are kept byte-for-byte, one event per line.
# ruff: noqa: E501

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llmplex.exceptions import StreamError
from llmplex.providers.anthropic import AnthropicAdapter
from llmplex.types import ModelResponseStream
from tests.providers.payloads import run_stream as run_adapter_stream, stream_request

MODEL = "claude-3-5-sonnet-20241022"
USER = [{"role": "user", "content": "Hi"}]
adapter = AnthropicAdapter()

TEXT_STREAM = b"""event: message_start
data: {"type":"message_start","message":{"id":"msg_01X","type":"message","role":"assistant","content":[],"model":"claude-3-5-sonnet-20241022","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}

event: message_stop
data: {"type":"message_stop"}

"""

TOOL_STREAM = b"""event: message_start
data: {"type":"message_start","message":{"id":"msg_02Y","type":"message","role":"assistant","content":[],"model":"claude-3-5-sonnet-20241022","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":400,"output_tokens":1,"cache_read_input_tokens":8}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01Y","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\": \\"Pa"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ris\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_02Z","name":"get_time","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\\"tz\\": \\"CET\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":65}}

event: message_stop
data: {"type":"message_stop"}

"""


def run_stream(raw: bytes, *, include_usage: bool = False, **params: Any) -> tuple[list[ModelResponseStream], bool]:
    request = stream_request(MODEL, include_usage=include_usage, messages=USER, **params)
    return run_adapter_stream(adapter, request, raw)


def test_text_stream_with_usage() -> None:
    chunks, finished = run_stream(TEXT_STREAM, include_usage=True)
    assert finished
    dumped = [c.model_dump() for c in chunks]
    assert {(d["id"], d["created"], d["model"], d["object"]) for d in dumped} == {
        ("msg_01X", chunks[0].created, MODEL, "chat.completion.chunk")
    }
    assert [d["choices"] for d in dumped] == [
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}],
        [{"index": 0, "delta": {"content": "Hello"}, "logprobs": None, "finish_reason": None}],
        [{"index": 0, "delta": {"content": "!"}, "logprobs": None, "finish_reason": None}],
        [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
        [],
    ]
    assert dumped[-1]["usage"] == {"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40}
    assert all("usage" not in d for d in dumped[:-1])


def test_text_stream_without_usage() -> None:
    chunks, finished = run_stream(TEXT_STREAM)
    assert finished
    assert len(chunks) == 4
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_tool_use_stream_counts_tool_calls_not_blocks() -> None:
    chunks, finished = run_stream(TOOL_STREAM, include_usage=True)
    assert finished
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Checking."
    fragments = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert fragments[0] == {
        "index": 0,
        "id": "toolu_01Y",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert fragments[3]["index"] == 1 and fragments[3]["id"] == "toolu_02Z"
    assert all("id" not in f for f in fragments[1:3] + fragments[4:])
    by_index: dict[int, str] = {}
    for fragment in fragments:
        by_index[fragment["index"]] = by_index.get(fragment["index"], "") + fragment["function"]["arguments"]
    assert {i: orjson.loads(a) for i, a in by_index.items()} == {0: {"city": "Paris"}, 1: {"tz": "CET"}}
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["tool_calls"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 408
    assert chunks[-1].usage.completion_tokens == 65


def test_json_mode_stream_streams_content() -> None:
    raw = TOOL_STREAM.replace(b'"name":"get_weather"', b'"name":"json_tool_call"').replace(
        b'"name":"get_time"', b'"name":"json_tool_call"'
    )
    chunks, _ = run_stream(raw, response_format={"type": "json_object"})
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == 'Checking.{"city": "Paris"}{"tz": "CET"}'
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_thinking_deltas_are_reasoning_content() -> None:
    raw = TEXT_STREAM.replace(
        b'{"type":"text_delta","text":"Hello"}', b'{"type":"thinking_delta","thinking":"hmm"}'
    ).replace(b'{"type":"text_delta","text":"!"}', b'{"type":"signature_delta","signature":"EqQB"}')
    chunks, _ = run_stream(raw)
    assert chunks[1].choices[0].delta.model_dump() == {"reasoning_content": "hmm"}
    assert not any(c.has_content() for c in chunks)


def test_error_event_raises_stream_error() -> None:
    raw = TEXT_STREAM.split(b"event: content_block_stop")[0] + (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    with pytest.raises(StreamError, match="Overloaded") as info:
        run_stream(raw)
    assert info.value.type == "overloaded_error"
    assert info.value.provider == "anthropic"


def test_malformed_event_raises_stream_error() -> None:
    with pytest.raises(StreamError, match="malformed"):
        run_stream(b'event: message_start\ndata: {"type":"message_start","mess\n\n')


def test_stream_without_message_stop_is_not_finished() -> None:
    chunks, finished = run_stream(TEXT_STREAM.split(b"event: message_stop")[0])
    assert not finished
    assert len(chunks) == 4
