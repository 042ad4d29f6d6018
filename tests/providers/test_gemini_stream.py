"""Gemini stream translation: whole SSE event sequences through the real decoder (no network)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llmplex.exceptions import StreamError
from llmplex.providers.gemini import GeminiAdapter
from tests.providers.payloads import run_stream, stream_request


@pytest.fixture
def adapter() -> GeminiAdapter:
    return GeminiAdapter()


def sse(*events: dict[str, Any]) -> bytes:
    # Gemini's alt=sse uses \r\n line ends
    return b"".join(b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in events)


# --- streams --------------------------------------------------------------------------------------

TEXT_STREAM = sse(
    {
        "candidates": [{"content": {"parts": [{"text": "Okay, let's"}], "role": "model"}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7},
        "modelVersion": "gemini-2.0-flash",
        "responseId": "IZI2acSK",
    },
    {
        "candidates": [{"content": {"parts": [{"text": " begin."}], "role": "model"}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 5, "totalTokenCount": 9},
        "modelVersion": "gemini-2.0-flash",
        "responseId": "IZI2acSK",
    },
    {
        "candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 10},
        "modelVersion": "gemini-2.0-flash",
        "responseId": "IZI2acSK",
    },
)


def test_text_stream_with_usage(adapter: GeminiAdapter) -> None:
    request = stream_request("gemini-2.0-flash", include_usage=True)
    chunks, finished = run_stream(adapter, request, TEXT_STREAM)
    assert finished
    assert {c.id for c in chunks} == {"IZI2acSK"}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Okay, let's begin."
    assert chunks[-2].choices[0].finish_reason == "stop"
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1  # running totals collapse to one final usage chunk
    assert usage_chunks[0] is chunks[-1]
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (4, 6)  # type: ignore[union-attr]


def test_text_stream_without_include_usage(adapter: GeminiAdapter) -> None:
    chunks, finished = run_stream(adapter, stream_request("g"), TEXT_STREAM)
    assert finished
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_function_call_stream_sends_whole_calls(adapter: GeminiAdapter) -> None:
    raw = sse(
        {"candidates": [{"content": {"parts": [{"text": "Checking."}], "role": "model"}, "index": 0}]},
        {
            "candidates": [
                {
                    "content": {
                        "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
                        "role": "model",
                    },
                    "index": 0,
                }
            ]
        },
        {
            "candidates": [
                {
                    "content": {"parts": [{"functionCall": {"name": "get_time", "args": {}}}], "role": "model"},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 12, "totalTokenCount": 22},
        },
    )
    chunks, finished = run_stream(adapter, stream_request("g"), raw)
    assert finished
    fragments = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    assert [f["index"] for f in fragments] == [0, 1]
    assert fragments[0]["id"].startswith("call_")
    assert fragments[0]["type"] == "function"
    assert fragments[0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_blocked_prompt_in_stream(adapter: GeminiAdapter) -> None:
    raw = sse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 5}})
    chunks, finished = run_stream(adapter, stream_request("g"), raw)
    assert finished
    assert chunks[-1].choices[0].finish_reason == "content_filter"


def test_error_event_in_stream_raises(adapter: GeminiAdapter) -> None:
    raw = (
        TEXT_STREAM.split(b"\r\n\r\n")[0]
        + b"\r\n\r\n"
        + sse(
            {
                "error": {
                    "code": 503,
                    "message": "The model is overloaded. Please try again later.",
                    "status": "UNAVAILABLE",
                }
            }
        )
    )
    with pytest.raises(StreamError, match="overloaded") as info:
        run_stream(adapter, stream_request("g"), raw)
    assert info.value.code == "UNAVAILABLE"


def test_stream_without_finish_reason_is_not_finished(adapter: GeminiAdapter) -> None:
    raw = b"\r\n\r\n".join(TEXT_STREAM.split(b"\r\n\r\n")[:2]) + b"\r\n\r\n"
    chunks, finished = run_stream(adapter, stream_request("g"), raw)
    assert len(chunks) == 3
    assert not finished


def test_malformed_stream_event(adapter: GeminiAdapter) -> None:
    with pytest.raises(StreamError, match="malformed"):
        run_stream(adapter, stream_request("g"), b'data: {"candidates": [\n\n')
