"""OpenAI wire format and the OpenAI-compatible rows: request building, parsing, errors. Pure function calls."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llmplex import AuthenticationError, BadRequestError, StreamError, UnsupportedParamsError
from llmplex._request import resolve_call
from llmplex._sse import SSEDecoder
from llmplex.config import ClientConfig
from llmplex.exceptions import ContextWindowExceededError
from llmplex.providers import get_adapter
from llmplex.providers.base import HTTPRequest

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


def build(model: str, environ: dict[str, str] | None = None, **options: Any) -> tuple[HTTPRequest, dict[str, Any]]:
    config = ClientConfig.from_env(environ or {})
    call = resolve_call(model, MESSAGES, options, config)
    assert call.endpoint is not None
    http = call.adapter.build_request(call.request, call.endpoint)
    assert http.body is not None
    return http, orjson.loads(http.body)


def test_openai_request() -> None:
    http, body = build(
        "gpt-4o-mini",
        api_key="sk-test",
        temperature=0.2,
        max_tokens=10,
        stop=["\n"],
        seed=1,
        timeout=5,
        num_retries=0,
        metadata={"x": 1},
    )
    assert http.method == "POST"
    assert http.url == "https://api.openai.com/v1/chat/completions"
    assert http.headers["Authorization"] == "Bearer sk-test"
    assert http.headers["Content-Type"] == "application/json"
    # call settings never go upstream
    assert body == {
        "model": "gpt-4o-mini",
        "messages": MESSAGES,
        "temperature": 0.2,
        "max_tokens": 10,
        "stop": ["\n"],
        "seed": 1,
    }


def test_openai_stream_request_keeps_stream_options() -> None:
    http, body = build("openai/gpt-4o", api_key="k", stream=True, stream_options={"include_usage": True})
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert http.headers["Accept"] == "text/event-stream"
    _, plain = build("openai/gpt-4o", api_key="k", stream_options={"include_usage": True})
    assert "stream" not in plain and "stream_options" not in plain


def test_provider_extras_pass_through_and_none_is_dropped() -> None:
    _, body = build("openai/gpt-4o", api_key="k", temperature=None, store=True, metadata_custom={"a": 1})
    assert body["store"] is True
    assert body["metadata_custom"] == {"a": 1}
    assert "temperature" not in body


def test_api_base_and_env_precedence() -> None:
    env = {"OPENAI_API_KEY": "env-key", "OPENAI_BASE_URL": "http://env.example/v1"}
    http, _ = build("openai/m", env)
    assert http.url == "http://env.example/v1/chat/completions"
    assert http.headers["Authorization"] == "Bearer env-key"
    http, _ = build("openai/m", env, api_key="arg-key", api_base="http://arg.example/v1/")
    assert http.url == "http://arg.example/v1/chat/completions"
    assert http.headers["Authorization"] == "Bearer arg-key"
    http, _ = build("openai/m", {"OPENAI_API_BASE": "http://base.example/v1", "OPENAI_API_KEY": "k"})
    assert http.url == "http://base.example/v1/chat/completions"


def test_groq_row() -> None:
    http, body = build("groq/llama3-8b-8192", {"GROQ_API_KEY": "gk"}, max_completion_tokens=5)
    assert http.url == "https://api.groq.com/openai/v1/chat/completions"
    assert http.headers["Authorization"] == "Bearer gk"
    assert body["model"] == "llama3-8b-8192"
    assert body["max_completion_tokens"] == 5


def test_mistral_renames() -> None:
    http, body = build("mistral/mistral-small-latest", {"MISTRAL_API_KEY": "mk"}, max_completion_tokens=7, seed=3)
    assert http.url == "https://api.mistral.ai/v1/chat/completions"
    assert body["max_tokens"] == 7
    assert body["random_seed"] == 3
    assert "max_completion_tokens" not in body and "seed" not in body


@pytest.mark.parametrize(
    ("model", "param", "value", "provider"),
    [
        ("groq/llama3-8b-8192", "logit_bias", {"1": 2}, "groq"),
        ("mistral/mistral-small-latest", "user", "u1", "mistral"),
        ("mistral/mistral-small-latest", "logit_bias", {"1": 2}, "mistral"),
    ],
)
def test_unsupported_param_names_param_and_provider(model: str, param: str, value: Any, provider: str) -> None:
    with pytest.raises(UnsupportedParamsError) as info:
        build(model, api_key="k", **{param: value})
    err = info.value
    assert isinstance(err, BadRequestError)
    assert err.param == param
    assert err.provider == provider
    assert param in str(err) and provider in str(err) and "drop_params=True" in str(err)
    # drop_params drops it instead, per call or per client
    _, body = build(model, api_key="k", drop_params=True, temperature=0.1, **{param: value})
    assert param not in body and body["temperature"] == 0.1
    config = ClientConfig.from_env({}, drop_params=True)
    call = resolve_call(model, MESSAGES, {"api_key": "k", param: value}, config)
    assert param not in call.request.params


def test_missing_key_is_authentication_error_before_any_request() -> None:
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY") as info:
        build("gpt-4o")
    assert info.value.provider == "openai"
    with pytest.raises(AuthenticationError, match="GROQ_API_KEY"):
        build("groq/llama3-8b-8192")


@pytest.mark.parametrize("model", ["ollama/llama3", "lm_studio/m"])
def test_keyless_local_servers(model: str) -> None:
    http, _ = build(model)
    assert "Authorization" not in http.headers
    assert http.url.startswith("http://localhost:")


def test_hosted_vllm_needs_api_base() -> None:
    with pytest.raises(BadRequestError, match="api_base"):
        build("hosted_vllm/m")
    http, _ = build("hosted_vllm/m", api_base="http://127.0.0.1:9/v1")
    assert http.url == "http://127.0.0.1:9/v1/chat/completions"


def test_azure_url_and_headers() -> None:
    http, body = build(
        "azure/my-gpt4o", api_key="az-key", api_base="https://res.openai.azure.com/", api_version="2024-06-01"
    )
    assert (
        http.url == "https://res.openai.azure.com/openai/deployments/my-gpt4o/chat/completions?api-version=2024-06-01"
    )
    assert http.headers["api-key"] == "az-key"
    assert "Authorization" not in http.headers
    assert body["model"] == "my-gpt4o"
    env = {"AZURE_API_KEY": "k", "AZURE_API_BASE": "https://r.openai.azure.com/openai", "AZURE_API_VERSION": "v9"}
    http, _ = build("azure/dep", env)
    assert http.url == "https://r.openai.azure.com/openai/deployments/dep/chat/completions?api-version=v9"
    http, _ = build("azure/dep", {"AZURE_OPENAI_API_KEY": "k"}, api_base="https://r.example")
    assert "api-version=" in http.url


def test_azure_needs_api_base() -> None:
    with pytest.raises(BadRequestError, match="api_base"):
        build("azure/dep", api_key="k")


def test_extra_headers() -> None:
    http, _ = build("openai/m", api_key="k", extra_headers={"X-Trace": "1"})
    assert http.headers["X-Trace"] == "1"


@pytest.mark.parametrize(
    "messages",
    [[], "hi", [{"content": "no role"}], [{"role": "robot", "content": "x"}], ["not a dict"]],
)
def test_bad_messages(messages: Any) -> None:
    with pytest.raises(BadRequestError) as info:
        resolve_call("openai/m", messages, {"api_key": "k"}, ClientConfig.from_env({}))
    assert info.value.param == "messages"


# --- parsing recorded payloads ---------------------------------------------------------------------

RECORDED_RESPONSE = {
    "id": "chatcmpl-B1",
    "object": "chat.completion",
    "created": 1730000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris.", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
    "system_fingerprint": "fp_x",
}

RECORDED_STREAM = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":'
    b'[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":'
    b'[{"index":0,"delta":{"content":"Par"},"logprobs":null,"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":'
    b'[{"index":0,"delta":{"content":"is"},"logprobs":null,"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":'
    b'[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],'
    b'"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\n\n'
    b"data: [DONE]\n\n"
)


def request_for(model: str = "openai/gpt-4o") -> Any:
    return resolve_call(model, MESSAGES, {"api_key": "k"}, ClientConfig.from_env({}))


def test_parse_response() -> None:
    call = request_for()
    response = call.adapter.parse_response(RECORDED_RESPONSE, call.request)
    assert response.model_dump() == RECORDED_RESPONSE
    assert response.choices[0].message.content == "Paris."


@pytest.mark.parametrize("body", [{"foo": 1}, [], "text", {"error": {"message": "boom"}}])
def test_parse_response_rejects_bodies_without_choices(body: Any) -> None:
    call = request_for()
    with pytest.raises(StreamError):
        call.adapter.parse_response(body, call.request)


def test_parse_stream() -> None:
    call = request_for()
    adapter = call.adapter
    state = adapter.new_stream_state(call.request)
    chunks = []
    for event in SSEDecoder().feed(RECORDED_STREAM):
        chunks.extend(adapter.parse_event(event, state))
    assert state.finished
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Paris"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 7
    assert chunks[3].choices[0].finish_reason == "stop"


def test_parse_stream_error_event() -> None:
    call = request_for()
    state = call.adapter.new_stream_state(call.request)
    (event,) = SSEDecoder().feed(b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n')
    with pytest.raises(StreamError, match="overloaded") as info:
        call.adapter.parse_event(event, state)
    assert info.value.type == "server_error"


def test_parse_stream_malformed_json() -> None:
    call = request_for()
    state = call.adapter.new_stream_state(call.request)
    (event,) = SSEDecoder().feed(b"data: {not json\n\n")
    with pytest.raises(StreamError, match="malformed"):
        call.adapter.parse_event(event, state)


@pytest.mark.parametrize(
    ("status", "body", "message", "code", "cls"),
    [
        (
            401,
            {
                "error": {
                    "message": "Incorrect API key provided",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            "Incorrect API key provided",
            "invalid_api_key",
            None,
        ),
        (
            400,
            {
                "error": {
                    "message": "This model's maximum context length is 128000 tokens.",
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
            },
            "This model's maximum context length is 128000 tokens.",
            "context_length_exceeded",
            ContextWindowExceededError,
        ),
        (429, {"error": {"message": "Rate limit reached", "code": 429}}, "Rate limit reached", "429", None),
        (500, "upstream exploded", "upstream exploded", None, None),
        (502, None, "HTTP 502", None, None),
        (400, {"error": "plain string error"}, "plain string error", None, None),
    ],
)
def test_parse_error(status: int, body: Any, message: str, code: str | None, cls: type | None) -> None:
    adapter = get_adapter("openai")
    details = adapter.parse_error(status, body)
    assert details.message == message
    assert details.code == code
    assert adapter.refine_error_class(status, details) is cls
