"""Response types dump back to exactly the OpenAI body they came from, and read as attributes or dicts."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from llmplex.types import ModelResponse, ModelResponseStream, Usage

OPENAI_BODY: dict[str, Any] = {
    "id": "chatcmpl-AbC123",
    "object": "chat.completion",
    "created": 1727000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "search", "arguments": '{"query": "paris"}'},
                    }
                ],
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 12,
        "completion_tokens": 7,
        "total_tokens": 19,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_123",
}

CHUNK_BODY: dict[str, Any] = {
    "id": "chatcmpl-AbC123",
    "object": "chat.completion.chunk",
    "created": 1727000000,
    "model": "gpt-4o-mini",
    "service_tier": "default",
    "system_fingerprint": "fp_123",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "logprobs": None, "finish_reason": None}],
}


def test_dump_is_identical_to_the_openai_body() -> None:
    response = ModelResponse.model_validate(copy.deepcopy(OPENAI_BODY))
    assert response.model_dump() == OPENAI_BODY
    assert json.loads(response.model_dump_json()) == OPENAI_BODY
    assert orjson.loads(response.json_bytes()) == OPENAI_BODY
    # key order kept too, so the JSON text matches what OpenAI sent
    assert list(response.model_dump()) == list(OPENAI_BODY)
    assert list(response.model_dump()["choices"][0]) == list(OPENAI_BODY["choices"][0])
    assert response.model_dump_json().encode() == json.dumps(OPENAI_BODY, separators=(",", ":")).encode()


def test_chunk_dump_is_identical() -> None:
    chunk = ModelResponseStream.model_validate(copy.deepcopy(CHUNK_BODY))
    assert chunk.model_dump() == CHUNK_BODY
    assert list(chunk.model_dump()) == list(CHUNK_BODY)
    assert list(chunk.model_dump()["choices"][0]) == list(CHUNK_BODY["choices"][0])
    ChatCompletionChunk.model_validate(chunk.model_dump())
    assert chunk.has_content()


def test_attribute_and_dict_access() -> None:
    response = ModelResponse.model_validate(copy.deepcopy(OPENAI_BODY))
    call = response.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "search"
    assert response["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == '{"query": "paris"}'
    assert response["usage"]["total_tokens"] == 19
    assert response.service_tier == "default"  # type: ignore[attr-defined]
    assert response["service_tier"] == "default"
    assert "usage" in response
    assert "nonexistent" not in response
    assert response.get("nonexistent", 5) == 5
    with pytest.raises(KeyError):
        response["nonexistent"]
    assert list(response.keys()) == list(OPENAI_BODY)


def test_validates_as_openai_chat_completion() -> None:
    response = ModelResponse.model_validate(copy.deepcopy(OPENAI_BODY))
    parsed = ChatCompletion.model_validate(response.model_dump())
    assert parsed.choices[0].message.tool_calls is not None
    assert parsed.usage is not None and parsed.usage.total_tokens == 19


def test_build_has_every_standard_field() -> None:
    response = ModelResponse.build(
        model="m", content="hello", usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    )
    body = response.model_dump()
    assert set(body) == {"id", "object", "created", "model", "system_fingerprint", "choices", "usage"}
    assert body["object"] == "chat.completion"
    assert body["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "hello"},
        "logprobs": None,
        "finish_reason": "stop",
    }
    ChatCompletion.model_validate(body)


def test_build_with_tool_calls() -> None:
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    response = ModelResponse.build(model="m", content=None, finish_reason="tool_calls", tool_calls=calls)
    assert response.model_dump()["choices"][0]["message"]["tool_calls"] == calls
    ChatCompletion.model_validate(response.model_dump())


def test_hidden_params_are_not_serialised() -> None:
    response = ModelResponse.build(model="m", content="x")
    response.hidden_params["api_base"] = "http://secret.example"
    assert "hidden_params" not in response.model_dump()
    assert b"secret" not in response.json_bytes()


def test_usage_chunk_without_choices_has_no_content() -> None:
    chunk = ModelResponseStream.model_validate(
        {**CHUNK_BODY, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}
    )
    assert not chunk.has_content()
    assert isinstance(chunk.usage, Usage)
    ChatCompletionChunk.model_validate(chunk.model_dump())


def test_setitem() -> None:
    response = ModelResponse.build(model="m", content="x")
    response["model"] = "other"
    assert response.model == "other"


def test_stream_chunk_wire_bytes_relay_the_upstream_json_as_sent() -> None:
    data = '{"id":"c1", "object":"chat.completion.chunk","created":1,"model":"m","x_vendor":7,"choices":[]}'
    chunk = ModelResponseStream.from_wire(orjson.loads(data), data)
    assert chunk.wire_bytes() == data.encode()  # byte for byte, spacing and vendor fields included
    assert orjson.loads(chunk.json_bytes()) == orjson.loads(data)
    # a data field that spanned several lines cannot go out as one data line: serialised instead
    multi = data.replace(', "object"', ',\n"object"')
    assert ModelResponseStream.from_wire(orjson.loads(multi), multi).wire_bytes() == chunk.json_bytes()
    # chunks built any other way have no wire form
    assert ModelResponseStream.model_validate(orjson.loads(data)).wire_bytes() == chunk.json_bytes()


def test_openai_stream_events_keep_their_wire_form() -> None:
    from llmplex._sse import SSEDecoder
    from llmplex.providers import get_adapter
    from llmplex.providers.base import StreamState

    data = (
        b'{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"hi"}}]}'
    )
    (event,) = SSEDecoder().feed(b"data: " + data + b"\n\n")
    (chunk,) = get_adapter("openai").parse_event(event, StreamState("m"))
    assert chunk.wire_bytes() == data and chunk.choices[0].delta.content == "hi"
