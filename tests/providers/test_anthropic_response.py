"""Anthropic translation: parsing responses and error bodies (no network)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llmplex.exceptions import (
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    RateLimitError,
    ServiceUnavailableError,
    StreamError,
)
from llmplex.providers.anthropic import AnthropicAdapter
from llmplex.providers.base import CompletionRequest
from tests.providers.payloads import native_error

MODEL = "claude-3-5-sonnet-20241022"
adapter = AnthropicAdapter()


USER: list[dict[str, Any]] = [{"role": "user", "content": "Hi"}]


# --- response -----------------------------------------------------------------------------------

TEXT_MESSAGE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " there!"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 6, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
}

TOOL_MESSAGE = {
    "id": "msg_01Aq9w938a90dw8q",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 412, "output_tokens": 57},
}


def parse(body: dict[str, Any], **params: Any) -> Any:
    return adapter.parse_response(body, CompletionRequest(model=MODEL, messages=USER, params=params))


def test_text_response() -> None:
    response = parse(TEXT_MESSAGE)
    dumped = response.model_dump()
    assert dumped["id"] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert dumped["object"] == "chat.completion"
    assert dumped["model"] == MODEL
    assert dumped["system_fingerprint"] is None
    assert isinstance(dumped["created"], int)
    assert dumped["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there!"},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert dumped["usage"] == {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}


def test_tool_use_response() -> None:
    response = parse(TOOL_MESSAGE)
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    call = choice.message.tool_calls[0]
    assert call.id == "toolu_01A09q90qw90lq917835lq9"
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"city": "Paris"}


def test_only_tool_use_has_null_content() -> None:
    body = {**TOOL_MESSAGE, "content": TOOL_MESSAGE["content"][1:], "stop_reason": "end_turn"}  # type: ignore[index]
    choice = parse(body).choices[0]
    assert choice.message.content is None
    assert choice.finish_reason == "tool_calls"  # presence of calls decides


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        ("something_new", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, finish: str) -> None:
    assert parse({**TEXT_MESSAGE, "stop_reason": stop_reason}).choices[0].finish_reason == finish


def test_usage_counts_cached_prompt_tokens() -> None:
    usage = {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}
    result = parse({**TEXT_MESSAGE, "usage": usage}).usage
    assert (result.prompt_tokens, result.completion_tokens, result.total_tokens) == (130, 5, 135)
    assert result.model_dump()["prompt_tokens_details"] == {"cached_tokens": 100}


def test_json_mode_response_becomes_content() -> None:
    body = {
        **TOOL_MESSAGE,
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "json_tool_call", "input": {"name": "Ada"}}],
    }
    choice = parse(body, response_format={"type": "json_object"}).choices[0]
    assert orjson.loads(choice.message.content) == {"name": "Ada"}
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"


def test_thinking_becomes_reasoning_content() -> None:
    thinking = {"type": "thinking", "thinking": "2+2 is 4", "signature": "sig"}
    body = {**TEXT_MESSAGE, "content": [thinking, {"type": "text", "text": "4"}]}
    message = parse(body).choices[0].message
    assert message.content == "4"
    assert message["reasoning_content"] == "2+2 is 4"


def test_error_shaped_success_body() -> None:
    with pytest.raises(StreamError, match="Overloaded"):
        parse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})


# --- errors -------------------------------------------------------------------------------------


def error_for(status: int, body: dict[str, Any]) -> Exception:
    return native_error(adapter, MODEL, status, body, {"request-id": "req_011"})


def anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}


def test_parse_error_body() -> None:
    details = adapter.parse_error(404, anthropic_error("not_found_error", "model: claude-3-foo"))
    assert (details.message, details.type) == ("model: claude-3-foo", "not_found_error")
    assert adapter.parse_error(502, "<html>bad gateway</html>").message == "<html>bad gateway</html>"


def test_error_classes() -> None:
    err = error_for(401, anthropic_error("authentication_error", "invalid x-api-key"))
    assert isinstance(err, AuthenticationError)
    assert err.message == "invalid x-api-key"
    assert err.request_id == "req_011"
    assert isinstance(error_for(429, anthropic_error("rate_limit_error", "slow down")), RateLimitError)
    overloaded = error_for(529, anthropic_error("overloaded_error", "Overloaded"))
    assert isinstance(overloaded, ServiceUnavailableError)
    assert overloaded.status_code == 503
    assert overloaded.type == "overloaded_error"
    assert isinstance(error_for(500, anthropic_error("overloaded_error", "Overloaded")), ServiceUnavailableError)
    too_long = error_for(
        400, anthropic_error("invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum")
    )
    assert isinstance(too_long, ContextWindowExceededError)
    plain = error_for(400, anthropic_error("invalid_request_error", "max_tokens: Field required"))
    assert type(plain) is BadRequestError
