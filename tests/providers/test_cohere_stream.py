"""Cohere stream translation: whole SSE event sequences through the real decoder (no network)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llmplex.exceptions import StreamError
from llmplex.providers.cohere import CohereAdapter
from tests.providers.payloads import run_stream, stream_request


@pytest.fixture
def adapter() -> CohereAdapter:
    return CohereAdapter()


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"event: %s\ndata: %s\n\n" % (e["type"].encode(), orjson.dumps(e)) for e in events)


# --- streams --------------------------------------------------------------------------------------

TEXT_STREAM = sse(
    {
        "id": "a8fc192e-1",
        "type": "message-start",
        "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}},
    },
    {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}},
    {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hel"}}}},
    {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "lo!"}}}},
    {"type": "citation-start", "index": 0, "delta": {"message": {"citations": {"start": 0, "end": 3, "text": "Hel"}}}},
    {"type": "citation-end", "index": 0},
    {"type": "content-end", "index": 0},
    {
        "type": "message-end",
        "delta": {
            "finish_reason": "COMPLETE",
            "usage": {
                "billed_units": {"input_tokens": 21, "output_tokens": 2},
                "tokens": {"input_tokens": 186, "output_tokens": 2},
            },
        },
    },
)


def test_text_stream_with_usage(adapter: CohereAdapter) -> None:
    request = stream_request("command-r", include_usage=True)
    chunks, finished = run_stream(adapter, request, TEXT_STREAM)
    assert finished
    assert {c.id for c in chunks} == {"a8fc192e-1"}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello!"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 186
    assert chunks[-1].usage.total_tokens == 188


def test_text_stream_without_include_usage_has_no_usage(adapter: CohereAdapter) -> None:
    chunks, finished = run_stream(adapter, stream_request("c"), TEXT_STREAM)
    assert finished
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_tool_call_stream_gives_openai_fragments(adapter: CohereAdapter) -> None:
    raw = sse(
        {"id": "t1", "type": "message-start", "delta": {"message": {"role": "assistant"}}},
        {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will check"}}},
        {
            "type": "tool-call-start",
            "index": 0,
            "delta": {
                "message": {
                    "tool_calls": {
                        "id": "get_weather_a1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                }
            },
        },
        {
            "type": "tool-call-delta",
            "index": 0,
            "delta": {"message": {"tool_calls": {"function": {"arguments": '{"city":'}}}},
        },
        {
            "type": "tool-call-delta",
            "index": 0,
            "delta": {"message": {"tool_calls": {"function": {"arguments": '"Paris"}'}}}},
        },
        {"type": "tool-call-end", "index": 0},
        {
            "type": "tool-call-start",
            "index": 1,
            "delta": {
                "message": {
                    "tool_calls": {
                        "id": "get_time_b2",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": "{}"},
                    }
                }
            },
        },
        {"type": "tool-call-end", "index": 1},
        {"type": "message-end", "delta": {"finish_reason": "TOOL_CALL"}},
    )
    chunks, finished = run_stream(adapter, stream_request("c"), raw)
    assert finished
    fragments = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    assert fragments[0] == {
        "index": 0,
        "id": "get_weather_a1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    args: dict[int, str] = {}
    for fragment in fragments:
        args[fragment["index"]] = args.get(fragment["index"], "") + fragment["function"]["arguments"]
    assert args == {0: '{"city":"Paris"}', 1: "{}"}
    assert fragments[-1]["id"] == "get_time_b2"
    assert all(not c.choices[0].delta.content for c in chunks)  # the tool plan is not answer text
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_error_in_message_end_raises(adapter: CohereAdapter) -> None:
    raw = sse(
        {"id": "e1", "type": "message-start", "delta": {"message": {"role": "assistant"}}},
        {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Par"}}}},
        {"type": "message-end", "delta": {"finish_reason": "ERROR", "error": "internal server error, please retry"}},
    )
    with pytest.raises(StreamError, match="internal server error"):
        run_stream(adapter, stream_request("c"), raw)


def test_untyped_error_object_in_stream_raises(adapter: CohereAdapter) -> None:
    raw = b'data: {"message":"too many requests"}\n\n'
    with pytest.raises(StreamError, match="too many requests"):
        run_stream(adapter, stream_request("c"), raw)


def test_malformed_stream_data_raises(adapter: CohereAdapter) -> None:
    with pytest.raises(StreamError, match="malformed"):
        run_stream(adapter, stream_request("c"), b"event: content-delta\ndata: {oops\n\n")


def test_stream_without_message_end_is_not_finished(adapter: CohereAdapter) -> None:
    raw = TEXT_STREAM.split(b"event: message-end")[0]
    chunks, finished = run_stream(adapter, stream_request("c"), raw)
    assert chunks
    assert not finished  # the stream driver turns this into StreamError (truncated)


def test_done_line_also_terminates(adapter: CohereAdapter) -> None:
    raw = TEXT_STREAM.split(b"event: message-end")[0] + b"data: [DONE]\n\n"
    _, finished = run_stream(adapter, stream_request("c"), raw)
    assert finished
