"""Gemini translation: parsing responses and error bodies (no network)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llmplex.exceptions import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    NotFoundError,
    RateLimitError,
    ServiceUnavailableError,
    StreamError,
)
from llmplex.providers.base import CompletionRequest, Endpoint
from llmplex.providers.gemini import GeminiAdapter
from tests.providers.payloads import native_error, request_body

ENDPOINT = Endpoint(base_url="https://generativelanguage.googleapis.com", api_key="AIza-secret")


@pytest.fixture
def adapter() -> GeminiAdapter:
    return GeminiAdapter()


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
    contents = request_body(adapter, CompletionRequest(model="g", messages=replay), ENDPOINT)["contents"]
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
