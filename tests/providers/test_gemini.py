"""Gemini translation: request bodies, responses, stream events and error bodies (no network)."""

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
    ServiceUnavailableError,
    StreamError,
    UnsupportedParamsError,
)
from llmplex.providers import get_adapter
from llmplex.providers.base import CompletionRequest, Endpoint
from llmplex.providers.gemini import GeminiAdapter
from tests.providers.payloads import native_error, request_body

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


# --- response ------------------------------------------------------------------------------------


def test_parse_text_response_with_thoughts(adapter: GeminiAdapter) -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"text": "Let me think", "thought": True}, {"text": "It is "}, {"text": "18°C."}],
                },
                "finishReason": "STOP",
                "index": 0,
                "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}],
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 26,
            "candidatesTokenCount": 8,
            "totalTokenCount": 120,
            "thoughtsTokenCount": 86,
            "cachedContentTokenCount": 4,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "qpc2afWVFJK4vr0Pq6WiyAU",
    }
    response = adapter.parse_response(body, CompletionRequest(model="gemini-2.5-flash", messages=[]))
    assert response.id == "qpc2afWVFJK4vr0Pq6WiyAU"
    assert response.model == "gemini-2.5-flash"
    message = response.choices[0].message
    assert message.content == "It is 18°C."
    assert message.get("reasoning_content") == "Let me think"
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None
    usage = response.usage.model_dump()
    assert usage == {
        "prompt_tokens": 26,
        "completion_tokens": 94,
        "total_tokens": 120,
        "completion_tokens_details": {"reasoning_tokens": 86},
        "prompt_tokens_details": {"cached_tokens": 4},
    }


def test_parse_function_call_response(adapter: GeminiAdapter) -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                            "thoughtSignature": "c2ln",
                        },
                        {"functionCall": {"name": "get_time", "args": {}}},
                    ],
                },
                "finishReason": "STOP",
                "finishMessage": "Model generated function call(s).",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 10, "totalTokenCount": 40},
    }
    response = adapter.parse_response(body, CompletionRequest(model="gemini-2.0-flash", messages=[]))
    assert response.id.startswith("chatcmpl-")
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert orjson.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert calls[0].id is not None
    assert calls[0].id.startswith("call_")
    assert calls[0].id.endswith("__thought__c2ln")
    assert calls[1].id != calls[0].id
    # the ids round-trip: replaying the conversation names the functions and echoes the signature
    replay = [
        {"role": "user", "content": "x"},
        choice.message.model_dump(),
        {"role": "tool", "tool_call_id": calls[0].id, "content": "18C"},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "noon"},
    ]
    contents = body_of(adapter, CompletionRequest(model="g", messages=replay))["contents"]
    assert contents[1]["parts"][0]["thoughtSignature"] == "c2ln"
    assert [p["functionResponse"]["name"] for p in contents[2]["parts"]] == ["get_weather", "get_time"]


def test_multiple_candidates(adapter: GeminiAdapter) -> None:
    body = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "A"}]}, "finishReason": "STOP", "index": 0},
            {"content": {"role": "model", "parts": [{"text": "B"}]}, "finishReason": "MAX_TOKENS", "index": 1},
        ]
    }
    response = adapter.parse_response(body, CompletionRequest(model="g", messages=[]))
    assert [(c.index, c.message.content, c.finish_reason) for c in response.choices] == [
        (0, "A", "stop"),
        (1, "B", "length"),
    ]
    assert response.usage is None


@pytest.mark.parametrize(
    ("gemini", "openai"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("FINISH_REASON_UNSPECIFIED", "stop"),
    ],
)
def test_finish_reason_map(adapter: GeminiAdapter, gemini: str, openai: str) -> None:
    body = {"candidates": [{"content": {"role": "model", "parts": [{"text": "a"}]}, "finishReason": gemini}]}
    assert adapter.parse_response(body, CompletionRequest(model="g", messages=[])).choices[0].finish_reason == openai


def test_blocked_prompt_is_content_filter(adapter: GeminiAdapter) -> None:
    body = {
        "promptFeedback": {
            "blockReason": "SAFETY",
            "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}],
        },
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
    }
    response = adapter.parse_response(body, CompletionRequest(model="g", messages=[]))
    assert response.choices[0].finish_reason == "content_filter"
    assert response.choices[0].message.content == ""
    assert response.usage is not None
    assert response.usage.prompt_tokens == 9


def test_empty_body_is_a_stream_error(adapter: GeminiAdapter) -> None:
    with pytest.raises(StreamError, match="no candidates"):
        adapter.parse_response({"usageMetadata": {}}, CompletionRequest(model="g", messages=[]))


# --- errors --------------------------------------------------------------------------------------


def error_for(status: int, body: Any, headers: dict[str, str] | None = None) -> APIStatusError:
    return native_error(GeminiAdapter(), "gemini-2.0-flash", status, body, headers)


def test_invalid_key_400_becomes_authentication_error() -> None:
    body = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                }
            ],
        }
    }
    err = error_for(400, body)
    assert isinstance(err, AuthenticationError)
    assert err.status_code == 401
    assert err.code == "API_KEY_INVALID"
    assert err.body == body


def test_other_gemini_errors() -> None:
    exhausted = error_for(
        429,
        {
            "error": {
                "code": 429,
                "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED",
            }
        },
        {"retry-after": "1"},
    )
    assert isinstance(exhausted, RateLimitError)
    assert exhausted.code == "RESOURCE_EXHAUSTED"
    assert exhausted.retry_after == 1.0
    missing = error_for(
        404,
        {
            "error": {
                "code": 404,
                "message": "models/gemini-9 is not found for API version v1beta",
                "status": "NOT_FOUND",
            }
        },
    )
    assert isinstance(missing, NotFoundError)
    overloaded = error_for(
        503, {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    )
    assert isinstance(overloaded, ServiceUnavailableError)
    too_long = error_for(
        400,
        {
            "error": {
                "code": 400,
                "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
                "status": "INVALID_ARGUMENT",
            }
        },
    )
    assert isinstance(too_long, ContextWindowExceededError)
    bad = error_for(
        400, [{"error": {"code": 400, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT"}}]
    )
    assert type(bad) is BadRequestError
    assert bad.message == "Invalid JSON payload received."
