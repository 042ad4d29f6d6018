"""Anthropic adapter: pure translation, on payloads shaped like the ones the Messages API sends."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llmplex._request import resolve_call
from llmplex.config import ClientConfig
from llmplex.exceptions import (
    BadRequestError,
    UnsupportedParamsError,
)
from llmplex.providers import get_adapter
from llmplex.providers.anthropic import AnthropicAdapter
from llmplex.providers.base import CompletionRequest, Endpoint
from tests.providers.payloads import request_body

MODEL = "claude-3-5-sonnet-20241022"
ENDPOINT = Endpoint(base_url="https://api.anthropic.com", api_key="sk-ant-test")
adapter = AnthropicAdapter()


def body_of(messages: list[dict[str, Any]], stream: bool = False, **params: Any) -> dict[str, Any]:
    request = CompletionRequest(model=MODEL, messages=messages, stream=stream, params=params)
    return request_body(adapter, request, ENDPOINT)


USER: list[dict[str, Any]] = [{"role": "user", "content": "Hi"}]


# --- request ------------------------------------------------------------------------------------


def test_registered_under_anthropic() -> None:
    assert isinstance(get_adapter("anthropic"), AnthropicAdapter)
    assert adapter.default_base_url == "https://api.anthropic.com"
    assert adapter.api_key_env == ("ANTHROPIC_API_KEY",)


@pytest.mark.parametrize(
    "base",
    [
        "https://api.anthropic.com",
        "https://api.anthropic.com/",
        "https://api.anthropic.com/v1",
        "https://api.anthropic.com/v1/",
    ],
)
def test_url_never_doubles_v1(base: str) -> None:
    request = CompletionRequest(model=MODEL, messages=USER)
    http = adapter.build_request(request, Endpoint(base_url=base, api_key="k"))
    assert http.method == "POST"
    assert http.url == "https://api.anthropic.com/v1/messages"


def test_headers() -> None:
    endpoint = Endpoint(
        base_url="http://x", api_key="sk-ant-1", headers={"anthropic-beta": "prompt-caching-2024-07-31"}
    )
    http = adapter.build_request(CompletionRequest(model=MODEL, messages=USER, stream=True), endpoint)
    assert http.headers["x-api-key"] == "sk-ant-1"
    assert http.headers["anthropic-version"] == "2023-06-01"
    assert http.headers["Content-Type"] == "application/json"
    assert http.headers["Accept"] == "text/event-stream"
    assert http.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert "Authorization" not in http.headers


def test_minimal_body_defaults_max_tokens() -> None:
    assert body_of(USER) == {
        "model": MODEL,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "max_tokens": 4096,
    }


def test_max_tokens_precedence_and_stream_flag() -> None:
    assert body_of(USER, max_tokens=100)["max_tokens"] == 100
    assert body_of(USER, max_tokens=100, max_completion_tokens=50)["max_tokens"] == 50
    body = body_of(USER, stream=True, stream_options={"include_usage": True})
    assert body["stream"] is True
    assert "stream_options" not in body


def test_system_and_developer_messages_become_top_level_system() -> None:
    body = body_of(
        [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Again"},
        ]
    )
    assert body["system"] == "You are terse.\n\nAnswer in French."
    # the two user turns are merged: Anthropic wants alternating roles
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Again"}]}
    ]


def test_system_with_cache_control_keeps_blocks() -> None:
    mark = {"type": "ephemeral"}
    body = body_of(
        [
            {"role": "system", "content": [{"type": "text", "text": "Long context", "cache_control": mark}]},
            {"role": "user", "content": "Hi"},
        ]
    )
    assert body["system"] == [{"type": "text", "text": "Long context", "cache_control": mark}]


def test_sampling_params_stop_and_user() -> None:
    request = CompletionRequest(
        model=MODEL,
        messages=USER,
        params={"temperature": 0.2, "top_p": 0.9, "stop": "END", "user": "user-42"},
        extra={"top_k": 5},
    )
    body = orjson.loads(adapter.build_request(request, ENDPOINT).body or b"")
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    assert body["top_k"] == 5
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "user-42"}
    assert body_of(USER, stop=["a", "b"])["stop_sequences"] == ["a", "b"]
    with pytest.raises(BadRequestError):
        body_of(USER, stop=[1, 2])


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_tools_translate_to_input_schema() -> None:
    bare = {"type": "function", "function": {"name": "now"}}
    body = body_of(USER, tools=[WEATHER_TOOL, bare])
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    assert body_of(USER, tools=[WEATHER_TOOL], tool_choice=choice)["tool_choice"] == expected


def test_parallel_tool_calls_false_disables_parallel_use() -> None:
    body = body_of(USER, tools=[WEATHER_TOOL], parallel_tool_calls=False)
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    body = body_of(USER, tools=[WEATHER_TOOL], tool_choice="required", parallel_tool_calls=False)
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    with pytest.raises(BadRequestError):
        body_of(USER, tools=[WEATHER_TOOL], tool_choice="sometimes")


TOOL_CONVERSATION: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": "Checking both.",
        "tool_calls": [
            {
                "id": "toolu_01A",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
        ],
    },
    {"role": "tool", "tool_call_id": "toolu_01A", "content": "18C, sunny"},
    {"role": "tool", "tool_call_id": "call_abc", "content": [{"type": "text", "text": "24C"}]},
    {"role": "user", "content": "Which is warmer?"},
]


def test_tool_calls_and_results_round_trip() -> None:
    body = body_of(TOOL_CONVERSATION, tools=[WEATHER_TOOL])
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18C, sunny"},
                {"type": "tool_result", "tool_use_id": "call_abc", "content": [{"type": "text", "text": "24C"}]},
                {"type": "text", "text": "Which is warmer?"},
            ],
        },
    ]


def test_assistant_null_content_and_empty_arguments() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "time?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "t1", "function": {"name": "now", "arguments": ""}}],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "12:00"},
    ]
    turns = body_of(messages)["messages"]
    assert turns[1] == {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "now", "input": {}}]}


@pytest.mark.parametrize("arguments", ['{"city": "Par', "[1, 2]", "null"])
def test_invalid_tool_arguments_are_a_bad_request(arguments: str) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "t1", "function": {"name": "f", "arguments": arguments}}]},
    ]
    with pytest.raises(BadRequestError, match="JSON object"):
        body_of(messages)


def test_images_data_and_http_urls() -> None:
    content = [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
    ]
    turns = body_of([{"role": "user", "content": content}])["messages"]
    assert turns[0]["content"] == [
        {"type": "text", "text": "Compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    with pytest.raises(BadRequestError):
        body_of([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}])


def test_unsupported_part_and_role() -> None:
    with pytest.raises(BadRequestError):
        body_of([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}])
    with pytest.raises(BadRequestError):
        body_of([{"role": "function", "name": "f", "content": "x"}])
    with pytest.raises(BadRequestError):
        body_of([{"role": "system", "content": "only a system prompt"}])


def test_response_format_json_uses_a_forced_tool() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    body = body_of(USER, response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}})
    assert body["tools"] == [
        {"name": "json_tool_call", "description": "Respond with a JSON object.", "input_schema": schema}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "json_tool_call"}
    assert body_of(USER, response_format={"type": "json_object"})["tools"][0]["input_schema"]["type"] == "object"
    assert "tools" not in body_of(USER, response_format={"type": "text"})
    with pytest.raises(UnsupportedParamsError):
        body_of(USER, tools=[WEATHER_TOOL], response_format={"type": "json_object"})


def test_reasoning_effort_enables_thinking() -> None:
    body = body_of(USER, reasoning_effort="low")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["max_tokens"] > 1024
    assert "thinking" not in body_of(USER, reasoning_effort="none")


@pytest.mark.parametrize("param", ["n", "logit_bias", "presence_penalty", "frequency_penalty", "seed", "logprobs"])
def test_params_anthropic_cannot_take(param: str) -> None:
    assert param not in adapter.supported_params
    config = ClientConfig()
    with pytest.raises(UnsupportedParamsError):
        resolve_call(f"anthropic/{MODEL}", USER, {"api_key": "k", param: 2}, config)
    call = resolve_call(f"anthropic/{MODEL}", USER, {"api_key": "k", param: 2, "drop_params": True}, config)
    assert param not in call.request.params


def test_stream_options_stays_supported() -> None:
    options = {"api_key": "k", "stream": True, "stream_options": {"include_usage": True}}
    call = resolve_call(f"anthropic/{MODEL}", USER, options, ClientConfig())
    assert call.request.include_usage
