"""End to end, once per provider: ``llmplex.AsyncClient`` -> real HTTP -> the emulator's native routes.

The scenarios every provider must pass are written once and run for each row of ``CASES``; a row holds
what really differs (the model, where the emulator serves it, and the native error details). Tests that
only make sense for one provider stay in ``test_e2e_<provider>.py``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from llmplex import (
    AsyncClient,
    AuthenticationError,
    ClientConfig,
    CompletionStream,
    ModelResponseStream,
    NotFoundError,
    RateLimitError,
    StreamError,
)
from tests.e2e_calls import ECHO, MESSAGES, SEARCH_TOOL, assert_fields, collect, complete, finishes, text_of


@dataclass(frozen=True)
class ProviderCase:
    provider: str
    model: str
    key_env: str
    openai_route: bool = False  # served under /v1 like OpenAI, else at the emulator's root
    plain_params: dict[str, Any] = field(default_factory=dict)  # the sampling params each maps natively
    tool_choice: str = "required"
    system_fingerprint: str | None = None
    # native error details: attribute of the raised error -> pattern its text must fully match
    bad_key: dict[str, str] = field(default_factory=dict)
    not_found: dict[str, str] = field(default_factory=dict)
    rate_limited: dict[str, str] = field(default_factory=dict)
    midstream: dict[str, str] = field(default_factory=dict)

    def name(self, directives: str = "") -> str:
        """The ``provider/model`` string, with emulator directives appended (``-tool``, ``-status-404``...)."""
        return f"{self.provider}/{self.model}{directives}"

    def api_base(self, emulator: Any) -> str:
        return str(emulator.openai_base if self.openai_route else emulator.url)


SAMPLING = {"temperature": 0.2, "max_tokens": 64, "stop": ["END"], "seed": 1}
CASES = [
    ProviderCase(
        "openai",
        "gpt-4o-mini",
        "OPENAI_API_KEY",
        openai_route=True,
        plain_params={"temperature": 0},
        tool_choice="auto",
        system_fingerprint="fp_emulator",  # passed through as the upstream sent it
        not_found={"message": ".*does not exist.*"},
    ),
    ProviderCase(
        "anthropic",
        "claude-3-5-sonnet-20241022",
        "ANTHROPIC_API_KEY",
        plain_params={"max_tokens": 64},
        bad_key={"type": "authentication_error"},
        not_found={"message": "model: .*", "type": "not_found_error"},
        rate_limited={"type": "rate_limit_error"},
        midstream={"type": ".+"},  # the Anthropic error type travels with the exception
    ),
    ProviderCase(
        "cohere",
        "command-r-plus-08-2024",
        "COHERE_API_KEY",
        plain_params=SAMPLING,
        bad_key={"message": "invalid api token"},
        not_found={"message": ".*not found.*"},
        rate_limited={"message": ".*Trial key.*"},
        midstream={"message": ".*internal server error.*"},
    ),
    ProviderCase(
        "gemini",
        "gemini-2.0-flash",
        "GEMINI_API_KEY",
        plain_params=SAMPLING,
        # Gemini answers an invalid key with 400 INVALID_ARGUMENT / API_KEY_INVALID; callers get a 401 error
        bad_key={"code": "API_KEY_INVALID", "message": ".*API key not valid.*"},
        not_found={"message": ".*not found.*"},
        rate_limited={"code": "RESOURCE_EXHAUSTED"},
        midstream={"message": ".*internal error.*"},
    ),
]


@pytest.fixture(params=CASES, ids=[case.provider for case in CASES])
def case(request: pytest.FixtureRequest) -> ProviderCase:
    result: ProviderCase = request.param
    return result


@pytest.fixture
async def client() -> AsyncIterator[AsyncClient]:
    async with AsyncClient(ClientConfig(num_retries=0, timeout=10.0)) as c:
        yield c


async def test_plain_completion(client: AsyncClient, emulator: Any, case: ProviderCase) -> None:
    response = await complete(client, case.name(), case.api_base(emulator), **case.plain_params)
    ChatCompletion.model_validate(response.model_dump())
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert response["choices"][0]["message"]["role"] == "assistant"
    assert choice.message.content == ECHO
    assert choice.finish_reason == "stop"
    assert response.usage is not None
    assert response.usage.completion_tokens == 5
    assert response.usage.prompt_tokens > 0
    assert response.usage.total_tokens == response.usage.prompt_tokens + 5
    assert response.model == case.model
    dumped = response.model_dump()
    assert dumped["object"] == "chat.completion"
    assert dumped.get("system_fingerprint") == case.system_fingerprint
    assert response.hidden_params["custom_llm_provider"] == case.provider


async def test_streaming_with_usage(client: AsyncClient, emulator: Any, case: ProviderCase) -> None:
    options = {"stream_options": {"include_usage": True}}
    chunks = await collect(client, case.name("-chunks-3"), case.api_base(emulator), **options)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk.model_dump())
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text_of(chunks) == ECHO
    assert sum(1 for c in chunks if c.has_content()) == 3
    assert len({(c.id, c.created, c.model) for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert finishes(chunks) == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])


async def test_streaming_without_usage(client: AsyncClient, emulator: Any, case: ProviderCase) -> None:
    chunks = await collect(client, case.name(), case.api_base(emulator))
    assert text_of(chunks) == ECHO
    assert all(c.usage is None for c in chunks)
    assert finishes(chunks) == ["stop"]


async def test_tool_call_and_result(client: AsyncClient, emulator: Any, case: ProviderCase) -> None:
    api_base = case.api_base(emulator)
    response = await complete(client, case.name("-tool"), api_base, tools=[SEARCH_TOOL], tool_choice=case.tool_choice)
    ChatCompletion.model_validate(response.model_dump())
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id
    assert call.function.name == "search"
    assert orjson.loads(call.function.arguments) == {"query": "emulated"}

    # the answer goes back as a tool result, in each provider's native shape
    followup = [
        *MESSAGES,
        choice.message.model_dump(),
        {"role": "tool", "tool_call_id": call.id, "content": "nothing found"},
        {"role": "user", "content": "thanks"},
    ]
    again = await complete(client, case.name(), api_base, messages=followup, tools=[SEARCH_TOOL])
    assert again.choices[0].message.content == "Echo: thanks"


async def test_tool_call_streaming(client: AsyncClient, emulator: Any, case: ProviderCase) -> None:
    chunks = await collect(client, case.name("-tool"), case.api_base(emulator), tools=[SEARCH_TOOL])
    fragments = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert fragments[0]["index"] == 0
    assert fragments[0]["id"]
    assert fragments[0]["function"]["name"] == "search"
    arguments = "".join(f["function"]["arguments"] for f in fragments if f["index"] == 0)
    assert orjson.loads(arguments) == {"query": "emulated"}
    assert finishes(chunks) == ["tool_calls"]
    assert text_of(chunks) == ""  # a tool plan or preamble is not answer text


async def test_bad_key_is_authentication_error(client: AsyncClient, emulator: Any, case: ProviderCase) -> None:
    with pytest.raises(AuthenticationError) as info:
        await complete(client, case.name(), case.api_base(emulator), api_key="bad-key")
    assert info.value.status_code == 401
    assert info.value.provider == case.provider
    assert "bad-key" not in str(info.value)
    assert_fields(info.value, case.bad_key)


async def test_missing_key_fails_before_any_request(client: AsyncClient, emulator: Any, case: ProviderCase) -> None:
    before = await emulator.astats()
    with pytest.raises(AuthenticationError, match=case.key_env):
        await client.completion(case.name(), MESSAGES, api_base=case.api_base(emulator))
    assert (await emulator.astats())["received"] == before["received"]


async def test_not_found(client: AsyncClient, emulator: Any, case: ProviderCase) -> None:
    with pytest.raises(NotFoundError) as info:
        await complete(client, case.name("-status-404"), case.api_base(emulator))
    assert info.value.status_code == 404
    assert_fields(info.value, case.not_found)


async def test_rate_limit_without_retries(client: AsyncClient, emulator: Any, case: ProviderCase) -> None:
    with pytest.raises(RateLimitError) as info:
        await complete(client, case.name("-status-429-retryafter-1"), case.api_base(emulator))
    assert info.value.status_code == 429
    assert info.value.retry_after == 1.0
    assert_fields(info.value, case.rate_limited)


async def test_rate_limit_retries_honour_retry_after(client: AsyncClient, emulator: Any, case: ProviderCase) -> None:
    # two 429s, each asking for 150 ms, then success: both retries wait as told
    model = case.name("-e2eretry-status-429-retryafterms-150-times-2")
    before = await emulator.astats()
    started = time.perf_counter()
    response = await complete(client, model, case.api_base(emulator), num_retries=2)
    elapsed = time.perf_counter() - started
    assert response.choices[0].message.content == ECHO
    assert elapsed >= 0.3
    assert (await emulator.astats())["received"] - before["received"] == 3


async def test_rate_limit_retry_on_stream_open(client: AsyncClient, emulator: Any, case: ProviderCase) -> None:
    model = case.name("-e2estreamretry-status-429-retryafterms-100-times-1")
    chunks = await collect(client, model, case.api_base(emulator), num_retries=1)
    assert text_of(chunks) == ECHO


async def test_midstream_error_raises_stream_error(client: AsyncClient, emulator: Any, case: ProviderCase) -> None:
    stream = await client.completion(
        case.name("-fault-midstream"), MESSAGES, api_base=case.api_base(emulator), api_key="test", stream=True
    )
    assert isinstance(stream, CompletionStream)
    received: list[ModelResponseStream] = []
    with pytest.raises(StreamError) as info:
        async with stream:
            async for chunk in stream:
                received.append(chunk)
                assert len(received) < 100
    assert any(c.has_content() for c in received)  # the chunks before the error were delivered
    assert info.value.provider == case.provider
    assert_fields(info.value, case.midstream)


@pytest.mark.parametrize(("fault", "match"), [("truncate", "truncated"), ("malformed", "malformed")])
async def test_broken_stream_raises_stream_error(
    client: AsyncClient, emulator: Any, case: ProviderCase, fault: str, match: str
) -> None:
    with pytest.raises(StreamError, match=match):
        await collect(client, case.name(f"-fault-{fault}"), case.api_base(emulator))
