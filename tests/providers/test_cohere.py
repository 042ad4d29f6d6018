"""Cohere v2 translation: request bodies, responses, stream events and error bodies (no network)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llmplex._request import resolve_call
from llmplex.config import ClientConfig
from llmplex.exceptions import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    NotFoundError,
    RateLimitError,
    StreamError,
    UnsupportedParamsError,
)
from llmplex.providers import get_adapter
from llmplex.providers.base import CompletionRequest, Endpoint
from llmplex.providers.cohere import CohereAdapter
from tests.providers.payloads import native_error, request_body

ENDPOINT = Endpoint(base_url="https://api.cohere.com", api_key="co-secret")

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture
def adapter() -> CohereAdapter:
    return CohereAdapter()


def body_of(adapter: CohereAdapter, request: CompletionRequest, endpoint: Endpoint = ENDPOINT) -> dict[str, Any]:
    return request_body(adapter, request, endpoint)


# --- registry and parameters ---------------------------------------------------------------------


def test_registered_under_cohere_and_alias() -> None:
    adapter = get_adapter("cohere")
    assert isinstance(adapter, CohereAdapter)
    assert get_adapter("cohere_chat") is adapter
    assert adapter.default_base_url == "https://api.cohere.com"
    assert adapter.api_key_env == ("COHERE_API_KEY", "CO_API_KEY")


@pytest.mark.parametrize("param", ["n", "logit_bias", "user", "logprobs"])
def test_params_v2_cannot_take_are_rejected_or_dropped(param: str) -> None:
    options: dict[str, Any] = {param: 2 if param == "n" else True, "api_key": "k"}
    with pytest.raises(UnsupportedParamsError) as info:
        resolve_call("cohere/command-r", [{"role": "user", "content": "hi"}], options, ClientConfig())
    assert info.value.param == param
    call = resolve_call(
        "cohere/command-r", [{"role": "user", "content": "hi"}], {**options, "drop_params": True}, ClientConfig()
    )
    assert param not in call.request.params


def test_key_is_read_from_co_api_key() -> None:
    config = ClientConfig.from_env({"CO_API_KEY": "from-env"})
    call = resolve_call("cohere/command-r", [{"role": "user", "content": "hi"}], {}, config)
    assert call.endpoint is not None
    assert call.endpoint.api_key == "from-env"


# --- request -------------------------------------------------------------------------------------


def test_request_url_auth_and_plain_body(adapter: CohereAdapter) -> None:
    request = CompletionRequest(
        model="command-r-plus-08-2024",
        messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hello"}],
        params={
            "temperature": 0.3,
            "top_p": 0.9,
            "max_completion_tokens": 100,
            "stop": "END",
            "seed": 7,
            "frequency_penalty": 0.1,
            "presence_penalty": 0.2,
            "stream_options": {"include_usage": True},
        },
        extra={"top_k": 40, "safety_mode": "STRICT"},
    )
    http = adapter.build_request(request, ENDPOINT)
    assert http.method == "POST"
    assert http.url == "https://api.cohere.com/v2/chat"
    assert http.headers["Authorization"] == "Bearer co-secret"
    assert "co-secret" not in http.url
    assert orjson.loads(http.body or b"") == {
        "model": "command-r-plus-08-2024",
        "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hello"}],
        "temperature": 0.3,
        "p": 0.9,
        "seed": 7,
        "frequency_penalty": 0.1,
        "presence_penalty": 0.2,
        "max_tokens": 100,
        "stop_sequences": ["END"],
        "k": 40,
        "safety_mode": "STRICT",
    }


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://api.cohere.com/", "https://api.cohere.com/v2/chat"),
        ("https://api.cohere.ai/v1", "https://api.cohere.ai/v2/chat"),
        ("https://api.cohere.com/v2", "https://api.cohere.com/v2/chat"),
        ("http://127.0.0.1:9/v2/chat", "http://127.0.0.1:9/v2/chat"),
    ],
)
def test_base_url_forms(adapter: CohereAdapter, base: str, url: str) -> None:
    request = CompletionRequest(model="command-r", messages=[{"role": "user", "content": "x"}])
    assert adapter.build_request(request, Endpoint(base_url=base, api_key="k")).url == url


def test_stream_request_sets_stream_flag(adapter: CohereAdapter) -> None:
    request = CompletionRequest(model="command-r", messages=[{"role": "user", "content": "x"}], stream=True)
    http = adapter.build_request(request, ENDPOINT)
    assert http.headers["Accept"] == "text/event-stream"
    assert orjson.loads(http.body or b"")["stream"] is True


def test_tool_conversation_round_trip(adapter: CohereAdapter) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": "I will look it up.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18}'},
    ]
    request = CompletionRequest(
        model="command-r", messages=messages, params={"tools": [WEATHER_TOOL, TIME_TOOL], "tool_choice": "required"}
    )
    body = body_of(adapter, request)
    assert body["messages"] == [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
            "tool_plan": "I will look it up.",
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18}'},
    ]
    assert body["tools"][0] == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        },
    }
    assert body["tool_choice"] == "REQUIRED"


def test_tool_choice_variants(adapter: CohereAdapter) -> None:
    def choice(value: Any) -> dict[str, Any]:
        params = {"tools": [WEATHER_TOOL, TIME_TOOL], "tool_choice": value}
        return body_of(
            adapter, CompletionRequest(model="c", messages=[{"role": "user", "content": "x"}], params=params)
        )

    assert "tool_choice" not in choice("auto")
    assert choice("none")["tool_choice"] == "NONE"
    named = choice({"type": "function", "function": {"name": "get_time"}})
    assert named["tool_choice"] == "REQUIRED"
    assert [t["function"]["name"] for t in named["tools"]] == ["get_time"]
    with pytest.raises(BadRequestError):
        choice({"type": "function", "function": {"name": "nope"}})


def test_response_formats(adapter: CohereAdapter) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}

    def fmt(value: Any) -> Any:
        request = CompletionRequest(
            model="c", messages=[{"role": "user", "content": "x"}], params={"response_format": value}
        )
        return body_of(adapter, request).get("response_format")

    assert fmt({"type": "json_object"}) == {"type": "json_object"}
    assert fmt({"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}) == {
        "type": "json_object",
        "json_schema": schema,
    }
    assert fmt({"type": "text"}) == {"type": "text"}


def test_unsupported_content_part_is_a_clear_error(adapter: CohereAdapter) -> None:
    messages = [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}]
    with pytest.raises(BadRequestError, match="input_audio"):
        adapter.build_request(CompletionRequest(model="c", messages=messages), ENDPOINT)


# --- response ------------------------------------------------------------------------------------


def test_parse_text_response(adapter: CohereAdapter) -> None:
    body = {
        "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
        "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "!"}]},
        "usage": {
            "billed_units": {"input_tokens": 5, "output_tokens": 3},
            "tokens": {"input_tokens": 71, "output_tokens": 3},
        },
    }
    request = CompletionRequest(model="command-r", messages=[])
    response = adapter.parse_response(body, request)
    assert response.id == "c14c80c3-18eb-4519-9460-6c92edd8cfb4"
    assert response.model == "command-r"
    assert response.choices[0].message.content == "Hello!"
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) == (71, 3, 74)


def test_parse_tool_call_response(adapter: CohereAdapter) -> None:
    body = {
        "id": "r1",
        "finish_reason": "TOOL_CALL",
        "message": {
            "role": "assistant",
            "tool_plan": "I will call get_weather.",
            "tool_calls": [
                {
                    "id": "get_weather_k3m9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        "usage": {"billed_units": {"input_tokens": 20, "output_tokens": 9}},
    }
    response = adapter.parse_response(body, CompletionRequest(model="command-r", messages=[]))
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name, orjson.loads(call.function.arguments)) == (
        "get_weather_k3m9",
        "get_weather",
        {"city": "Paris"},
    )
    assert response.usage is not None
    assert response.usage.prompt_tokens == 20  # billed_units when tokens is absent


@pytest.mark.parametrize(
    ("cohere", "openai"),
    [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
        ("ERROR_TOXIC", "content_filter"),
        ("ERROR", "stop"),
        ("SOMETHING_NEW", "stop"),
    ],
)
def test_finish_reason_map(adapter: CohereAdapter, cohere: str, openai: str) -> None:
    body = {
        "id": "x",
        "finish_reason": cohere,
        "message": {"role": "assistant", "content": [{"type": "text", "text": "a"}]},
    }
    assert adapter.parse_response(body, CompletionRequest(model="c", messages=[])).choices[0].finish_reason == openai


def test_body_without_message_is_a_stream_error(adapter: CohereAdapter) -> None:
    with pytest.raises(StreamError):
        adapter.parse_response({"id": "x"}, CompletionRequest(model="c", messages=[]))


# --- errors --------------------------------------------------------------------------------------


def error_for(status: int, body: Any, headers: dict[str, str] | None = None) -> APIStatusError:
    return native_error(CohereAdapter(), "command-r", status, body, headers)


def test_error_bodies_map_to_typed_errors() -> None:
    err = error_for(401, {"id": "9f1", "message": "invalid api token"})
    assert isinstance(err, AuthenticationError)
    assert err.message == "invalid api token"
    assert err.body == {"id": "9f1", "message": "invalid api token"}

    limited = error_for(
        429, {"message": "You are using a Trial key, which is limited to 10 API calls / minute."}, {"retry-after": "3"}
    )
    assert isinstance(limited, RateLimitError)
    assert limited.retry_after == 3.0
    assert "Trial key" in limited.message

    missing = error_for(404, {"message": "model 'nope' not found, make sure the correct model ID was used"})
    assert isinstance(missing, NotFoundError)

    too_long = error_for(400, {"message": "too many tokens: total number of tokens in the prompt cannot exceed 128000"})
    assert isinstance(too_long, ContextWindowExceededError)

    invalid_token = error_for(498, {"message": "blocked token"})
    assert isinstance(invalid_token, AuthenticationError)
    assert invalid_token.status_code == 401

    plain = error_for(502, b"<html>bad gateway</html>")
    assert plain.status_code == 502
    assert "bad gateway" in str(plain)
