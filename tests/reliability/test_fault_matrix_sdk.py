"""The fault matrix through the SDK (``AsyncClient``), on the emulator's scripted faults and raw sockets.

Every row ends with a typed error or a correct answer, never a silent short answer or a hang, and
leaves nothing behind (``no_leaks``: tasks, upstream connections, file descriptors).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmplex import AsyncClient, CompletionStream, ModelResponse
from llmplex.exceptions import (
    AllModelsFailedError,
    APIConnectionError,
    APIError,
    InternalServerError,
    RateLimitError,
    ServiceUnavailableError,
    StreamError,
    Timeout,
)
from tests.fixtures_emulator import EmulatorServer
from tests.raw_upstream import Conn, Received, serve
from tests.reliability.leaks import no_leaks

MESSAGES = [{"role": "user", "content": "one two three"}]
_ids = itertools.count()


def unique(directives: str) -> str:
    """A fresh model name: ``times-N`` counters are per exact name."""
    return f"m{next(_ids)}x{time.monotonic_ns() % 10**9}-{directives}"


@pytest.fixture
async def client(emulator: EmulatorServer) -> AsyncIterator[AsyncClient]:
    async with no_leaks(emulator):
        sdk = AsyncClient(num_retries=0, timeout=10.0, stream_idle_timeout=5.0)
        try:
            yield sdk
        finally:
            await sdk.aclose()


def openai(emulator: EmulatorServer, directives: str) -> dict[str, Any]:
    return {"model": "openai/" + unique(directives), "api_base": emulator.openai_base, "api_key": "k"}


async def call(sdk: AsyncClient, target: dict[str, Any], **options: Any) -> ModelResponse | CompletionStream:
    params = {**target, **options}
    return await sdk.completion(params.pop("model"), MESSAGES, **params)


async def drain(stream: ModelResponse | CompletionStream) -> str:
    assert isinstance(stream, CompletionStream)
    async with stream:
        return "".join(c.choices[0].delta.content or "" for c in [chunk async for chunk in stream] if c.choices)


# ------------------------------------------------------------------ rate limits and 5xx


@pytest.mark.parametrize(("directive", "wait"), [("retryafter-1", 1.0), ("retryafterms-300", 0.3)])
async def test_429_is_retried_after_the_advertised_time_not_before(
    client: AsyncClient, emulator: EmulatorServer, directive: str, wait: float
) -> None:
    started = time.monotonic()
    result = await call(client, openai(emulator, f"status-429-{directive}-times-1"), num_retries=1)
    elapsed = time.monotonic() - started
    assert isinstance(result, ModelResponse) and result.choices[0].message.content == "Echo: one two three"
    assert wait <= elapsed < wait + 1.5


async def test_429_exhausted_is_a_rate_limit_error_with_retry_after(
    client: AsyncClient, emulator: EmulatorServer
) -> None:
    with pytest.raises(RateLimitError) as caught:
        await call(client, openai(emulator, "status-429-retryafterms-50-times-5"), num_retries=1)
    assert caught.value.status_code == 429 and caught.value.retry_after is not None


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_retried(client: AsyncClient, emulator: EmulatorServer, status: int) -> None:
    result = await call(client, openai(emulator, f"status-{status}-times-1"), num_retries=1)
    assert isinstance(result, ModelResponse)
    with pytest.raises(InternalServerError):
        await call(client, openai(emulator, f"status-{status}"), num_retries=1)


async def test_anthropic_529_overloaded_is_retried_then_typed(client: AsyncClient, emulator: EmulatorServer) -> None:
    target = {"model": "anthropic/" + unique("status-529-times-1"), "api_base": emulator.url, "api_key": "k"}
    result = await call(client, target, num_retries=1, max_tokens=50)
    assert isinstance(result, ModelResponse)
    target["model"] = "anthropic/" + unique("status-529")
    with pytest.raises(ServiceUnavailableError):
        await call(client, target, num_retries=1, max_tokens=50)


# ------------------------------------------------------------------ connections


async def test_connection_refused(client: AsyncClient) -> None:
    async with serve(_never_called) as upstream:
        base = upstream.openai_base
    with pytest.raises(APIConnectionError):  # the port is closed now
        await call(client, {"model": "openai/m", "api_base": base, "api_key": "k"})


async def test_dns_failure(client: AsyncClient) -> None:
    with pytest.raises(APIConnectionError):
        await call(client, {"model": "openai/m", "api_base": "http://llmplex-test.invalid/v1", "api_key": "k"})


@pytest.mark.parametrize("stream", [False, True])
async def test_reset_mid_body(client: AsyncClient, emulator: EmulatorServer, stream: bool) -> None:
    with pytest.raises((APIConnectionError, StreamError)):
        result = await call(client, openai(emulator, "fault-reset"), stream=stream)
        await drain(result)


async def test_garbage_that_is_not_http(client: AsyncClient) -> None:
    async def junk(received: Received, conn: Conn) -> None:
        await conn.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 this is not HTTP at all\r\n\r\n")

    async with serve(junk) as upstream:
        with pytest.raises(APIConnectionError):
            await call(client, {"model": "openai/m", "api_base": upstream.openai_base, "api_key": "k"})


async def _never_called(received: Received, conn: Conn) -> None:
    raise AssertionError("no request expected")


# ------------------------------------------------------------------ stalls


async def test_stall_before_headers_times_out_and_cancels_upstream(
    client: AsyncClient, emulator: EmulatorServer
) -> None:
    before = await emulator.astats()
    started = time.monotonic()
    with pytest.raises(Timeout):
        await call(client, openai(emulator, "fault-stallheaders"), timeout=0.5)
    assert time.monotonic() - started < 2.0
    await emulator.wait_for(lambda s: s["disconnected"] > before["disconnected"])


async def test_stall_after_first_chunk_times_out_and_cancels_upstream(emulator: EmulatorServer) -> None:
    async with no_leaks(emulator):
        sdk = AsyncClient(num_retries=0, stream_idle_timeout=0.5)
        try:
            before = await emulator.astats()
            started = time.monotonic()
            with pytest.raises(Timeout):
                await drain(await call(sdk, openai(emulator, "fault-stall"), stream=True))
            assert time.monotonic() - started < 2.5
            await emulator.wait_for(lambda s: s["disconnected"] > before["disconnected"])
        finally:
            await sdk.aclose()


# ------------------------------------------------------------------ bad bodies and streams


async def test_malformed_json_body(client: AsyncClient, emulator: EmulatorServer) -> None:
    with pytest.raises(APIError):
        await call(client, openai(emulator, "fault-malformed"))


@pytest.mark.parametrize("fault", ["malformed", "truncate", "midstream"])
async def test_broken_stream_is_a_typed_error_never_a_short_answer(
    client: AsyncClient, emulator: EmulatorServer, fault: str
) -> None:
    with pytest.raises(APIError):
        text = await drain(await call(client, openai(emulator, f"fault-{fault}"), stream=True))
        raise AssertionError(f"a silent short answer: {text!r}")


# ------------------------------------------------------------------ races


async def test_race_fast_failure_never_wins_and_losers_are_closed(
    client: AsyncClient, emulator: EmulatorServer
) -> None:
    before = await emulator.astats()
    fast_fail = openai(emulator, "status-500")
    winner = openai(emulator, "delay-150")
    slow = openai(emulator, "delay-3000")
    result = await client.batch_completion_models(deployments=[fast_fail, winner, slow], messages=MESSAGES)
    assert isinstance(result, ModelResponse)
    assert result.hidden_params["model_label"] == winner["model"]
    await emulator.wait_for(lambda s: s["disconnected"] - before["disconnected"] >= 1)  # the slow loser


async def test_race_streams_fast_failure_never_wins(client: AsyncClient, emulator: EmulatorServer) -> None:
    # both fail at once, long before the winner's first token
    broken = [openai(emulator, "status-503"), openai(emulator, "status-500")]
    winner = openai(emulator, "ttft-150")
    result = await client.batch_completion_models(deployments=[*broken, winner], messages=MESSAGES, stream=True)
    assert await drain(result) == "Echo: one two three"


async def test_race_all_failures(client: AsyncClient, emulator: EmulatorServer) -> None:
    deployments = [openai(emulator, "status-500"), openai(emulator, "status-429"), openai(emulator, "fault-malformed")]
    with pytest.raises(AllModelsFailedError) as caught:
        await client.batch_completion_models(deployments=deployments, messages=MESSAGES)
    assert len(caught.value.exceptions) == 3
    assert all(isinstance(e, APIError) for e in caught.value.exceptions)


async def test_race_timeout_cancels_everyone(client: AsyncClient, emulator: EmulatorServer) -> None:
    before = await emulator.astats()
    deployments = [openai(emulator, "delay-3000"), openai(emulator, "fault-stallheaders")]
    with pytest.raises(Timeout):
        await client.batch_completion_models(deployments=deployments, messages=MESSAGES, timeout=0.3)
    await emulator.wait_for(lambda s: s["disconnected"] - before["disconnected"] >= 2)


async def test_no_leak_check_can_fail(emulator: EmulatorServer) -> None:
    """The leak check itself catches a task left running."""
    with pytest.raises(AssertionError, match="tasks left behind"):
        async with no_leaks(settle=0.2):
            leaked = asyncio.ensure_future(asyncio.sleep(10))
    leaked.cancel()
