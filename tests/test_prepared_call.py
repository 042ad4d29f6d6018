"""``prepare_call`` + ``resolve_prepared`` (the proxy resolves each deployment once) must resolve exactly
what ``resolve_call`` resolves for the same settings and per-request options."""

from __future__ import annotations

from typing import Any

import pytest

from llmplex import ClientConfig
from llmplex._request import ResolvedCall, prepare_call, resolve_call, resolve_prepared
from llmplex.exceptions import APIError, UnsupportedParamsError

MESSAGES = [{"role": "user", "content": "hi"}]
BASE = {"api_base": "http://127.0.0.1:9/v1", "api_key": "k"}


def summary(call: ResolvedCall) -> dict[str, Any]:
    request = call.request
    return {
        "label": call.label,
        "adapter": call.adapter.name,
        "model": request.model,
        "messages": request.messages,
        "stream": request.stream,
        "params": request.params,
        "extra": request.extra,
        "endpoint": call.endpoint,
        "timeouts": (call.timeout, call.num_retries, call.first_token_timeout, call.idle_timeout),
        "mock": (call.mock_response, call.mock_delay),
        "hidden": call.hidden,
    }


@pytest.mark.parametrize(
    ("model", "settings", "options"),
    [
        ("openai/m", BASE, {}),
        ("openai/m", BASE, {"stream": True}),
        ("openai/m", BASE, {"temperature": 0.2, "max_tokens": 5, "top_k": 3}),
        ("openai/m", {**BASE, "temperature": 0.5, "top_k": 1}, {"temperature": 0.1}),  # request wins
        ("openai/m", {**BASE, "temperature": 0.5}, {"temperature": None}),  # None drops the setting's value
        ("openai/m", BASE, {"extra_body": {"x": 1}, "y": 2}),
        ("openai/m", BASE, {"timeout": 3, "num_retries": 1}),  # call settings per request
        ("openai/m", {**BASE, "timeout": 7, "seed": 4}, {"stream": True, "n": 1}),
        ("anthropic/claude-x", {"api_base": "http://127.0.0.1:9", "api_key": "k"}, {"max_tokens": 9}),
        ("cohere/command-r", {"api_key": "k", "drop_params": True}, {"logit_bias": {"1": 2}}),
        ("openai/m", {**BASE, "mock_response": "hello"}, {"temperature": 0}),
    ],
)
def test_same_resolution_as_resolve_call(model: str, settings: dict[str, Any], options: dict[str, Any]) -> None:
    config = ClientConfig.from_env({})
    prepared = prepare_call(model, settings, config)
    assert summary(resolve_prepared(prepared, MESSAGES, options, config)) == summary(
        resolve_call(model, MESSAGES, {**settings, **options}, config)
    )


def test_same_errors_as_resolve_call() -> None:
    config = ClientConfig.from_env({})
    prepared = prepare_call("cohere/command-r", {"api_key": "k"}, config)
    with pytest.raises(UnsupportedParamsError) as ours:
        resolve_prepared(prepared, MESSAGES, {"logit_bias": {"1": 2}}, config)
    with pytest.raises(UnsupportedParamsError) as theirs:
        resolve_call("cohere/command-r", MESSAGES, {"api_key": "k", "logit_bias": {"1": 2}}, config)
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(APIError):
        resolve_prepared(prepared, [{"role": "nobody", "content": "x"}], {}, config)
    with pytest.raises(APIError):  # a missing key fails at preparation, as it would per request
        prepare_call("openai/m", {"api_base": "http://127.0.0.1:9/v1"}, ClientConfig.from_env({}))
