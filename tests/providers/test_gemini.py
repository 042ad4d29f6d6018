"""Gemini translation: request bodies, responses, stream events and error bodies (no network)."""

from __future__ import annotations

from typing import Any

import pytest

from llmplex._request import resolve_call
from llmplex.config import ClientConfig
from llmplex.exceptions import (
    BadRequestError,
    UnsupportedParamsError,
)
from llmplex.providers import get_adapter
from llmplex.providers.base import CompletionRequest, Endpoint
from llmplex.providers.gemini import GeminiAdapter
from tests.providers.payloads import request_body

ENDPOINT = Endpoint(base_url="https://generativelanguage.googleapis.com", api_key="AIza-secret")

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
                "strict": {"type": "boolean"},  # a property may be named like a stripped keyword
                "tags": {"type": "array", "items": {"type": "object", "properties": {}, "additionalProperties": False}},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
NO_ARGS_TOOL = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


@pytest.fixture
def adapter() -> GeminiAdapter:
    return GeminiAdapter()


def body_of(adapter: GeminiAdapter, request: CompletionRequest) -> dict[str, Any]:
    return request_body(adapter, request, ENDPOINT)


# --- registry and parameters ---------------------------------------------------------------------


def test_registered_under_gemini_and_google() -> None:
    adapter = get_adapter("gemini")
    assert isinstance(adapter, GeminiAdapter)
    assert get_adapter("google") is adapter
    assert adapter.api_key_env == ("GEMINI_API_KEY", "GOOGLE_API_KEY")


def test_unsupported_param_rejected() -> None:
    with pytest.raises(UnsupportedParamsError):
        resolve_call(
            "gemini/gemini-2.0-flash",
            [{"role": "user", "content": "x"}],
            {"logit_bias": {"1": 2}, "api_key": "k"},
            ClientConfig(),
        )
    call = resolve_call(
        "gemini/gemini-2.0-flash", [{"role": "user", "content": "x"}], {"n": 2, "api_key": "k"}, ClientConfig()
    )
    assert call.request.params == {"n": 2}


# --- request -------------------------------------------------------------------------------------


def test_url_and_key_header(adapter: GeminiAdapter) -> None:
    request = CompletionRequest(model="gemini-2.0-flash", messages=[{"role": "user", "content": "hi"}])
    http = adapter.build_request(request, ENDPOINT)
    assert http.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
    assert http.headers["x-goog-api-key"] == "AIza-secret"
    assert "AIza" not in http.url
    stream = adapter.build_request(
        CompletionRequest(model="models/gemini-2.0-flash", messages=request.messages, stream=True), ENDPOINT
    )
    assert (
        stream.url
        == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    )
    v1 = adapter.build_request(request, Endpoint(base_url="http://127.0.0.1:1/v1/", api_key="k"))
    assert v1.url == "http://127.0.0.1:1/v1/models/gemini-2.0-flash:generateContent"


def test_messages_become_contents(adapter: GeminiAdapter) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are terse."},
        {"role": "system", "content": "Answer in English."},
        {"role": "user", "content": "Hello"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
        {"role": "assistant", "content": "Nice picture."},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}}]},
    ]
    body = body_of(adapter, CompletionRequest(model="gemini-2.0-flash", messages=messages))
    assert body["systemInstruction"] == {"parts": [{"text": "You are terse."}, {"text": "Answer in English."}]}
    assert body["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "Hello"},
                {"text": "Look:"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            ],
        },
        {"role": "model", "parts": [{"text": "Nice picture."}]},
        {
            "role": "user",
            "parts": [{"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp"}}],
        },
    ]


def test_tool_calls_and_results(adapter: GeminiAdapter) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather in Paris and the time?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_b__thought__c2lnbmF0dXJl",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": ""},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp_c": 18}'},
        {"role": "tool", "tool_call_id": "call_b__thought__c2lnbmF0dXJl", "content": "12:00"},
    ]
    body = body_of(adapter, CompletionRequest(model="g", messages=messages))
    assert body["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {}}, "thoughtSignature": "c2lnbmF0dXJl"},
            ],
        },
        {
            "role": "user",  # parallel results merged into one turn
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}},
                {"functionResponse": {"name": "get_time", "response": {"content": "12:00"}}},
            ],
        },
    ]


def test_tool_result_without_a_known_call_is_an_error(adapter: GeminiAdapter) -> None:
    messages = [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "call_zz", "content": "1"}]
    with pytest.raises(BadRequestError, match="tool_call_id"):
        body_of(adapter, CompletionRequest(model="g", messages=messages))


def test_invalid_tool_arguments_are_an_error(adapter: GeminiAdapter) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}],
        },
    ]
    with pytest.raises(BadRequestError, match="not valid JSON"):
        body_of(adapter, CompletionRequest(model="g", messages=messages))


def test_tools_and_tool_choice(adapter: GeminiAdapter) -> None:
    params = {
        "tools": [WEATHER_TOOL, NO_ARGS_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    body = body_of(adapter, CompletionRequest(model="g", messages=[{"role": "user", "content": "x"}], params=params))
    weather, no_args = body["tools"][0]["functionDeclarations"]
    assert weather == {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "nullable": True, "enum": ["c", "f"]},
                "strict": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "object", "properties": {}}},
            },
            "required": ["city"],
        },
    }
    assert no_args == {"name": "get_time"}
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    for choice, mode in [("auto", "AUTO"), ("required", "ANY"), ("none", "NONE")]:
        params = {"tools": [WEATHER_TOOL], "tool_choice": choice}
        body = body_of(
            adapter, CompletionRequest(model="g", messages=[{"role": "user", "content": "x"}], params=params)
        )
        assert body["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


def test_generation_config(adapter: GeminiAdapter) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False}
    params = {
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 50,
        "max_completion_tokens": 256,
        "stop": ["END", "STOP"],
        "n": 2,
        "seed": 3,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}},
        "stream_options": {"include_usage": True},
    }
    extra = {"top_k": 40, "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]}
    body = body_of(
        adapter, CompletionRequest(model="g", messages=[{"role": "user", "content": "x"}], params=params, extra=extra)
    )
    assert body["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "candidateCount": 2,
        "seed": 3,
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.25,
        "maxOutputTokens": 256,
        "stopSequences": ["END", "STOP"],
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"a": {"type": "integer"}}},
        "topK": 40,
    }
    assert body["safetySettings"] == extra["safetySettings"]
    assert "stream_options" not in body
    json_mode = {"response_format": {"type": "json_object"}}
    body = body_of(adapter, CompletionRequest(model="g", messages=[{"role": "user", "content": "x"}], params=json_mode))
    assert body["generationConfig"] == {"responseMimeType": "application/json"}
