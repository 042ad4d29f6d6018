"""The Anthropic Messages <-> OpenAI chat translation, with plain values."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llmplex.messages_format import (
    MessagesFormatError,
    anthropic_error_body,
    estimate_input_tokens,
    openai_to_anthropic_response,
    to_openai_request,
    validate_messages_request,
)
from llmplex.messages_stream import AnthropicStreamTranslator, encode_event

TOOL = {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {}}}


def test_request_mapping_with_system_images_tools_and_results() -> None:
    body = {
        "model": "m",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "be brief"}, {"type": "text", "text": "and kind"}],
        "stop_sequences": ["END"],
        "temperature": 0.5,
        "metadata": {"user_id": "u1"},
        "tools": [TOOL],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "stream": True,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "checking"},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]},
                    {"type": "text", "text": "thanks"},
                ],
            },
        ],
    }
    out = to_openai_request(validate_messages_request(body))
    assert out["messages"][0] == {"role": "system", "content": "be brief\nand kind"}
    assert out["messages"][1]["content"][1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}
    assistant = out["messages"][2]
    assert assistant["content"] == "checking"
    assert assistant["tool_calls"][0]["id"] == "toolu_1"
    assert orjson.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert out["messages"][3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}
    assert out["messages"][4] == {"role": "user", "content": "thanks"}
    assert out["stop"] == ["END"] and out["max_tokens"] == 100 and out["temperature"] == 0.5
    assert out["user"] == "u1"
    assert out["tools"][0]["function"]["parameters"] == TOOL["input_schema"]
    assert out["tool_choice"] == "required" and out["parallel_tool_calls"] is False
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m", "max_tokens": 5, "messages": []}, "messages"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}, "messages"),
        ([], None),
    ],
)
def test_validation(body: Any, field: str | None) -> None:
    with pytest.raises(MessagesFormatError) as info:
        validate_messages_request(body)
    assert info.value.param == field


def test_count_tokens_needs_no_max_tokens() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello world"}]}
    assert validate_messages_request(body, count_tokens=True) is body
    assert estimate_input_tokens(body) >= 1


def test_server_tools_are_refused() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }
    with pytest.raises(MessagesFormatError, match="server tool"):
        to_openai_request(body)


def test_response_mapping() -> None:
    answer = {
        "id": "chatcmpl-abc",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me check.",
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 3}},
    }
    message = openai_to_anthropic_response(answer, "claude-alias")
    assert message["id"] == "msg_abc" and message["type"] == "message" and message["model"] == "claude-alias"
    assert message["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {
        "input_tokens": 7,
        "output_tokens": 4,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 3,
    }
    length = openai_to_anthropic_response({"choices": [{"message": {"content": "x"}, "finish_reason": "length"}]}, "m")
    assert length["stop_reason"] == "max_tokens"


def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        out = {"id": "chatcmpl-1", "choices": [], "usage": usage}
    return out


def test_stream_event_sequence_text_then_tools() -> None:
    t = AnthropicStreamTranslator("m")
    events = t.feed(chunk({"role": "assistant", "content": ""}))
    events += t.feed(chunk({"content": "Hel"}))
    events += t.feed(chunk({"content": "lo"}))
    events += t.feed(
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "f"}}]})
    )
    events += t.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q": '}}]}))
    events += t.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]}))
    events += t.feed(
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "g", "arguments": "{}"}}]})
    )
    events += t.feed(chunk({}, "tool_calls"))
    events += t.feed(chunk({}, usage={"prompt_tokens": 9, "completion_tokens": 5}))
    events += t.finish()
    assert t.finish() == []
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(payload["type"] == name for name, payload in events)
    starts = [p for n, p in events if n == "content_block_start"]
    assert [s["index"] for s in starts] == [0, 1, 2]
    assert starts[1]["content_block"] == {"type": "tool_use", "id": "call_a", "name": "f", "input": {}}
    deltas = [p["delta"] for n, p in events if n == "content_block_delta"]
    assert deltas[0] == {"type": "text_delta", "text": "Hel"}
    assert "".join(d["partial_json"] for d in deltas[2:4]) == '{"q": "x"}'
    final = events[-2][1]
    assert final["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert final["usage"] == {"input_tokens": 9, "output_tokens": 5}


def test_empty_stream_still_makes_a_whole_message() -> None:
    names = [name for name, _ in AnthropicStreamTranslator("m").finish()]
    assert names == ["message_start", "ping", "message_delta", "message_stop"]


def test_encoding_and_errors() -> None:
    assert encode_event("ping", {"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'
    name, payload = AnthropicStreamTranslator.error(529, "Overloaded")
    assert name == "error" and payload["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert anthropic_error_body(400, "bad", "req_1") == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "bad"},
        "request_id": "req_1",
    }
