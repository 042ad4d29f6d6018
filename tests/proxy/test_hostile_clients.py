"""Hostile clients against a real proxy: ``extra_body`` that would replace what the proxy checked, malformed
inputs an adapter would trip over (400 naming the field, never a 500), and internal errors that must stay 500s."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import orjson
import pytest

from llmplex.proxy.errors import error_dict, error_origin, error_status
from tests.fixtures_emulator import EmulatorServer
from tests.fixtures_proxy import ProxyServer, openai_model

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def proxy(proxy_factory: Any, emulator: EmulatorServer) -> ProxyServer:
    anthropic = {
        "model_name": "claude",
        "litellm_params": {"model": "anthropic/claude-test", "api_base": emulator.url, "api_key": "test-key"},
    }
    gemini = {
        "model_name": "gemini",
        "litellm_params": {"model": "gemini/gemini-test", "api_base": emulator.url, "api_key": "test-key"},
    }
    return proxy_factory({"model_list": [openai_model("ok", "ok", emulator.openai_base), anthropic, gemini]})


async def _post(proxy: ProxyServer, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(proxy.base + "/chat/completions", json=body) as resp:
        return resp.status, await resp.json()


def _assert_400(status: int, body: Any, param: str, *words: str) -> None:
    assert status == 400, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert error["param"] == param, error
    for word in words:
        assert word in error["message"], error


# ------------------------------------------------------------------ extra_body (issue 17 #3)


@pytest.mark.parametrize("model", ["ok", "claude", "gemini"])
@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"model": "some-other-upstream-model"}, "model"),
        ({"messages": [{"role": "user", "content": "replaced"}]}, "messages"),
        ({"stream": True}, "stream"),
        ({"system": "replaced system prompt"}, "system"),
        ({"contents": [{"role": "user", "parts": [{"text": "replaced"}]}]}, "contents"),
        ({"n": 100_000}, "n"),
        ({"temperature": "hot"}, "temperature"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"generationConfig": {"candidateCount": 100_000}}, "candidateCount"),
        ({"api_base": "http://127.0.0.1:9"}, "api_base"),
    ],
    ids=lambda v: v if isinstance(v, str) else ",".join(v),
)
async def test_extra_body_cannot_replace_what_the_proxy_checked(
    proxy: ProxyServer, emulator: EmulatorServer, model: str, extra: dict[str, Any], named: str
) -> None:
    before = (await emulator.astats())["received"]
    status, body = await _post(proxy, {"model": model, "messages": MESSAGES, "extra_body": extra})
    _assert_400(status, body, "extra_body", named)
    assert (await emulator.astats())["received"] == before  # refused before any upstream call


@pytest.mark.parametrize(
    ("field", "value"),
    [("system", "replaced"), ("contents", []), ("systemInstruction", {"parts": []})],
)
async def test_top_level_fields_that_reach_the_body_as_given_are_checked_too(
    proxy: ProxyServer, field: str, value: Any
) -> None:
    status, body = await _post(proxy, {"model": "claude", "messages": MESSAGES, field: value})
    _assert_400(status, body, field)


@pytest.mark.parametrize("extra", [5, "x", [1]])
async def test_extra_body_must_be_an_object(proxy: ProxyServer, extra: Any) -> None:
    status, body = await _post(proxy, {"model": "ok", "messages": MESSAGES, "extra_body": extra})
    _assert_400(status, body, "extra_body")


@pytest.mark.parametrize("model", ["ok", "claude", "gemini"])
async def test_provider_fields_in_extra_body_still_pass(proxy: ProxyServer, model: str) -> None:
    extra = {"top_k": 5, "temperature": 0.5, "n": 1}
    status, body = await _post(proxy, {"model": model, "messages": MESSAGES, "extra_body": extra})
    assert status == 200, body
    assert body["choices"][0]["message"]["content"]


async def test_an_integral_number_is_an_integer_as_in_json_schema(proxy: ProxyServer) -> None:
    """The OpenAPI document says integer; JSON Schema counts 2.0 as one (schemathesis sends such values)."""
    extra = {"generationConfig": {"candidateCount": 1.0}}
    status, body = await _post(proxy, {"model": "gemini", "messages": MESSAGES, "max_tokens": 5.0, "extra_body": extra})
    assert status == 200, body


# ------------------------------------------------------------------ malformed inputs (issue 17 #12)


def _assistant_turn(**fields: Any) -> list[dict[str, Any]]:
    return [*MESSAGES, {"role": "assistant", "content": None, **fields}, {"role": "user", "content": "go on"}]


@pytest.mark.parametrize("model", ["ok", "claude", "gemini"])
@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("messages", _assistant_turn(tool_calls=[1]), "tool_calls"),
        ("messages", _assistant_turn(tool_calls="call"), "tool_calls"),
        ("messages", _assistant_turn(tool_calls=[{"id": "c1", "type": "function", "function": 5}]), "tool_calls"),
        (
            "messages",
            _assistant_turn(tool_calls=[{"id": "c1", "type": "function", "function": {"name": 5, "arguments": "{}"}}]),
            "tool_calls",
        ),
        (
            "messages",
            _assistant_turn(tool_calls=[{"id": "c1", "type": "function", "function": {"name": "f", "arguments": 5}}]),
            "tool_calls",
        ),
        ("messages", [*MESSAGES, {"role": "tool", "tool_call_id": 5, "content": "x"}], "tool_call_id"),
        ("response_format", {"type": "json_schema", "json_schema": 5}, "json_schema"),
        ("response_format", {"type": "json_schema", "json_schema": {"name": "x", "schema": 5}}, "schema"),
        ("response_format", {"type": 5}, "type"),
        ("response_format", {"type": "xml"}, "type"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_malformed_inputs_are_400_naming_the_field(
    proxy: ProxyServer, model: str, field: str, value: Any, named: str
) -> None:
    body: dict[str, Any] = {"model": model, "messages": MESSAGES, field: value}
    status, answer = await _post(proxy, body)
    _assert_400(status, answer, field, named)


@pytest.mark.parametrize("model", ["ok", "claude", "gemini"])
async def test_nesting_that_cannot_be_forwarded_is_400(proxy: ProxyServer, model: str) -> None:
    deep: Any = {}
    for _ in range(250):  # orjson reads 1024 levels but writes only 254: the adapters add a few
        deep = {"a": deep}
    status, body = await _post(proxy, {"model": model, "messages": MESSAGES, "extra_body": {"x_deep": deep}})
    assert status == 400 and "nested too deeply" in body["error"]["message"], body


def test_an_internal_type_error_is_a_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    """orjson.JSONEncodeError *is* TypeError: a bug raising TypeError must not pass for a client's deep JSON."""
    caplog.set_level(logging.ERROR, logger="llmplex.proxy")
    try:
        orjson.dumps({"a": object()})  # the encoder's own error, as any internal bug would raise it
    except TypeError as exc:
        error = exc
    assert error_status(error) == 500 and error_origin(error) == "internal"  # counted as ours in /metrics
    body = error_dict(error)
    assert body["type"] == "server_error" and body["code"] == "500" and "nested" not in body["message"]
    assert caplog.records and caplog.records[-1].exc_info is not None  # logged with its traceback
