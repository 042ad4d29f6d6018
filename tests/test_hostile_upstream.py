"""The SDK against hostile upstreams (issue 17): real servers on 127.0.0.1, the emulator's hostile faults and
raw sockets (``tests/raw_upstream.py``) where exact bytes matter. Each test failed before its fix."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from llmplex import (
    APIConnectionError,
    APIStatusError,
    AsyncClient,
    AuthenticationError,
    ClientConfig,
    CompletionStream,
    StreamError,
    Timeout,
)
from llmplex.providers.base import HTTPRequest
from tests.raw_upstream import Conn, Received, completion_body, serve

MESSAGES = [{"role": "user", "content": "hello"}]
KEY = "sk-hostile-0123456789abcdef"
BOUND = 20.0  # no test may hang: every wait below is bounded by this


@pytest.fixture
async def client() -> AsyncIterator[AsyncClient]:
    async with AsyncClient(ClientConfig.from_env({}), num_retries=0) as c:
        yield c


async def drain(stream: Any) -> list[Any]:
    assert isinstance(stream, CompletionStream)
    chunks = []
    async with asyncio.timeout(BOUND), stream:
        async for chunk in stream:
            chunks.append(chunk)
            assert len(chunks) < 1_000_000
    return chunks


# --- 1. redirects ---------------------------------------------------------------------------------------------

# provider model -> options; each provider sends its key in its own header
PROVIDERS: dict[str, dict[str, Any]] = {
    "openai/m": {"suffix": "/v1"},  # Authorization: Bearer
    "anthropic/m": {},  # x-api-key
    "azure/dep": {"api_version": "2024-06-01"},  # api-key
    "gemini/m": {},  # x-goog-api-key
}


@pytest.mark.parametrize("status", [307, 302])
@pytest.mark.parametrize("model", list(PROVIDERS))
@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
async def test_redirects_are_not_followed_and_the_key_goes_nowhere(
    client: AsyncClient, model: str, status: int, stream: bool
) -> None:
    async def record(req: Received, conn: Conn) -> None:
        await conn.respond(200, completion_body())

    async with serve(record) as elsewhere:

        async def redirect(req: Received, conn: Conn) -> None:
            await conn.respond(status, b"", {"Location": elsewhere.url + req.path})

        async with serve(redirect) as up:
            options = dict(PROVIDERS[model])
            base = up.url + options.pop("suffix", "")
            with pytest.raises(APIStatusError) as info:
                result = await client.completion(
                    model, MESSAGES, api_base=base, api_key=KEY, stream=stream, num_retries=2, **options
                )
                if stream:
                    await drain(result)
            await asyncio.sleep(0.05)
        assert elsewhere.requests == []  # nothing, key or prompt, reached the redirect target
    err = info.value
    assert len(up.requests) == 1  # and a redirect is not retried
    assert err.status_code == status and err.provider == model.split("/")[0]
    assert f"HTTP {status}" in str(err) and err.provider in str(err)
    assert KEY not in str(err) and elsewhere.url not in str(err)


# --- 2. streams: caps, linear decoding, progress-based timeouts -------------------------------------------------


async def test_endless_line_is_a_stream_error_not_unbounded_memory(emulator: Any) -> None:
    async with AsyncClient(ClientConfig.from_env({}), max_stream_event_bytes=1024 * 1024) as c:
        stream = await c.completion(
            "openai/m-fault-endlessline", MESSAGES, api_base=emulator.openai_base, api_key=KEY, stream=True
        )
        started = time.monotonic()
        with pytest.raises(StreamError, match="larger than 1048576 bytes"):
            await drain(stream)
        assert time.monotonic() - started < 5


async def test_gzip_bomb_stream_stops_at_the_event_cap(client: AsyncClient, emulator: Any) -> None:
    stream = await client.completion(
        "openai/m-fault-gzipbomb-mib-64", MESSAGES, api_base=emulator.openai_base, api_key=KEY, stream=True
    )
    with pytest.raises(StreamError, match="larger than"):
        await drain(stream)


async def test_ping_comments_do_not_keep_a_stalled_stream_alive(client: AsyncClient, emulator: Any) -> None:
    started = time.monotonic()
    stream = await client.completion(
        "openai/m-fault-pingstall-chunkdelay-20",
        MESSAGES,
        api_base=emulator.openai_base,
        api_key=KEY,
        stream=True,
        stream_first_token_timeout=0.5,
    )
    with pytest.raises(Timeout, match="first-token"):
        await drain(stream)
    assert 0.45 <= time.monotonic() - started < 5


async def test_the_call_timeout_bounds_a_ping_only_stream(client: AsyncClient, emulator: Any) -> None:
    started = time.monotonic()
    stream = await client.completion(
        "openai/m-fault-pingstall-chunkdelay-20",
        MESSAGES,
        api_base=emulator.openai_base,
        api_key=KEY,
        stream=True,
        timeout=0.6,
    )
    with pytest.raises(Timeout):
        await drain(stream)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("name", ["stream_first_token_timeout", "stream_timeout"])
async def test_a_role_only_chunk_is_not_the_first_token(client: AsyncClient, emulator: Any, name: str) -> None:
    stream = await client.completion(
        "openai/m-fault-rolestall",
        MESSAGES,
        api_base=emulator.openai_base,
        api_key=KEY,
        stream=True,
        stream_idle_timeout=60,
        **{name: 0.5},
    )
    started = time.monotonic()
    with pytest.raises(Timeout, match="first-token"):
        chunks = await drain(stream)
        assert not chunks
    assert time.monotonic() - started < 5


async def test_the_call_timeout_bounds_a_stream_that_keeps_sending(client: AsyncClient, emulator: Any) -> None:
    started = time.monotonic()
    stream = await client.completion(
        "openai/m-fault-hugebody", MESSAGES, api_base=emulator.openai_base, api_key=KEY, stream=True, timeout=1
    )
    chunks = 0
    with pytest.raises(Timeout, match="call's timeout"):
        async with asyncio.timeout(BOUND):
            async for _ in stream:
                chunks += 1
    assert chunks > 10
    assert time.monotonic() - started < 5


async def test_the_call_timeout_applies_between_chunks(client: AsyncClient, emulator: Any) -> None:
    stream = await client.completion(
        "openai/m-fault-stall", MESSAGES, api_base=emulator.openai_base, api_key=KEY, stream=True, timeout=0.5
    )
    started = time.monotonic()
    with pytest.raises(Timeout):
        await drain(stream)  # stream_idle_timeout is 120 s: the call's 0.5 s bounds the stall
    assert time.monotonic() - started < 5


# --- 7, 8. credentials in URLs and upstream error text ----------------------------------------------------------


async def test_connection_errors_do_not_show_url_credentials(client: AsyncClient) -> None:
    with pytest.raises(APIConnectionError) as info:
        await client.completion("openai/m", MESSAGES, api_base="http://admin:pa55w0rd@127.0.0.1:9/v1", api_key=KEY)
    text = str(info.value)
    assert "127.0.0.1:9" in text
    assert "pa55w0rd" not in text and "admin" not in text and KEY not in text


@pytest.mark.parametrize("model", ["openai/gpt-4o-fault-echokey", "anthropic/claude-fault-echokey"])
async def test_an_upstream_echoing_the_key_does_not_hand_it_to_the_caller(
    client: AsyncClient, emulator: Any, model: str
) -> None:
    base = emulator.openai_base if model.startswith("openai") else emulator.url
    with pytest.raises(AuthenticationError) as info:
        await client.completion(model, MESSAGES, api_base=base, api_key=KEY)
    err = info.value
    assert "Incorrect API key provided" in err.message  # the message is kept ...
    assert KEY not in str(err) and KEY not in repr(err.body)  # ... without the key
    assert "***" in err.message


async def test_configured_secrets_and_key_shapes_are_redacted_from_errors() -> None:
    other = "sk-other-deployment-key-42"

    async def echo(req: Received, conn: Conn) -> None:
        message = f"bad: {other}; Authorization: Bearer sk-unrelated-99; x-api-key: abc123xyz"
        await conn.respond(400, {"error": {"message": message}})

    async with serve(echo) as up, AsyncClient(ClientConfig.from_env({}), num_retries=0, secrets=(other,)) as c:
        with pytest.raises(APIStatusError) as info:
            await c.completion("openai/m", MESSAGES, api_base=up.openai_base, api_key=KEY)
    text = str(info.value)
    assert other not in text and "sk-unrelated-99" not in text and "abc123xyz" not in text
    assert "Bearer ***" in text


async def test_a_malformed_body_is_described_not_echoed(client: AsyncClient) -> None:
    async def garbage(req: Received, conn: Conn) -> None:
        await conn.respond(200, b"<html>your key " + req.headers["authorization"].encode() + b" is here</html>")

    async with serve(garbage) as up:
        with pytest.raises(StreamError) as info:
            await client.completion("openai/m", MESSAGES, api_base=up.openai_base, api_key=KEY)
    text = str(info.value)
    assert "malformed JSON" in text and "bytes" in text
    assert KEY not in text and "your key" not in text and "<html>" not in text


def test_http_request_repr_shows_no_key_and_no_prompt() -> None:
    request = HTTPRequest.post_json(
        "https://u:pw@example.invalid/v1/x?key=" + KEY,
        {"x-api-key": KEY, "Authorization": f"Bearer {KEY}", "anthropic-version": "1"},
        {"messages": [{"role": "user", "content": "secret prompt"}]},
    )
    text = repr(request)
    assert KEY not in text and "secret prompt" not in text and "pw" not in text
    assert "anthropic-version" in text and "bytes" in text


# --- 9. response size --------------------------------------------------------------------------------------------


async def test_a_huge_body_is_cut_at_max_response_bytes(client: AsyncClient, emulator: Any) -> None:
    started = time.monotonic()
    with pytest.raises(StreamError, match="max_response_bytes"):
        await client.completion("openai/m-fault-hugebody", MESSAGES, api_base=emulator.openai_base, api_key=KEY)
    assert time.monotonic() - started < 10


async def test_a_gzip_bomb_body_is_cut_after_decompression(emulator: Any) -> None:
    async with AsyncClient(ClientConfig.from_env({}), num_retries=0, max_response_bytes=4 * 1024 * 1024) as c:
        with pytest.raises(StreamError, match="max_response_bytes"):
            await c.completion("openai/m-fault-gzipbomb-mib-64", MESSAGES, api_base=emulator.openai_base, api_key=KEY)


async def test_an_announced_oversized_body_is_refused_before_reading(client: AsyncClient) -> None:
    async def huge(req: Received, conn: Conn) -> None:
        await conn.send_head(200, {"Content-Type": "application/json", "Content-Length": str(10**12)})
        await conn.send(b'{"id": "')
        await conn.wait_client_gone(timeout=BOUND)

    async with serve(huge) as up:
        with pytest.raises(StreamError, match="announced"):
            await client.completion("openai/m", MESSAGES, api_base=up.openai_base, api_key=KEY)
        assert await asyncio.wait_for(up.disconnected.wait(), BOUND)


async def test_bodies_read_at_once_share_max_buffered_response_bytes() -> None:
    """Two large bodies at once: the second would overdraw the shared budget and fails at once; the first is
    read whole, and once it is done the budget is free again. Each body's first MiB is not charged."""
    mib = 1024 * 1024
    raw = orjson.dumps({**completion_body("big"), "padding": "x" * (3 * mib + mib // 2)})
    release = asyncio.Event()
    sent: list[int] = []

    async def big(req: Received, conn: Conn) -> None:
        await conn.send_head(200, {"Content-Type": "application/json"})  # no length: read until close
        await conn.send(raw[:-100])
        sent.append(1)
        await asyncio.wait_for(release.wait(), BOUND)
        await conn.send(raw[-100:])
        conn.writer.close()

    config = ClientConfig.from_env({})
    async with (
        AsyncClient(config, num_retries=0, max_response_bytes=8 * mib, max_buffered_response_bytes=4 * mib) as c,
        serve(big) as up,
    ):
        budget = c._transport._budget
        first = asyncio.create_task(c.completion("openai/m", MESSAGES, api_base=up.openai_base, api_key=KEY))
        for _ in range(int(BOUND / 0.01)):  # until the first body is mostly read
            if budget.used >= 2 * mib:
                break
            await asyncio.sleep(0.01)
        assert budget.used >= 2 * mib
        started = time.monotonic()
        with pytest.raises(StreamError, match=r"max_buffered_response_bytes \(4194304"):
            await c.completion("openai/m", MESSAGES, api_base=up.openai_base, api_key=KEY)
        assert time.monotonic() - started < BOUND / 2  # refused while the first still holds its share
        release.set()
        response = await asyncio.wait_for(first, BOUND)
        assert response.choices[0].message.content == "big"
        assert budget.used == 0
        # the same size alone fits, and an announced length is charged before reading
        release.set()
        again = await c.completion("openai/m", MESSAGES, api_base=up.openai_base, api_key=KEY)
        assert again.choices[0].message.content == "big" and budget.used == 0


async def test_a_lone_body_may_pass_the_budget_but_not_beside_another() -> None:
    """An announced 6 MiB body with a 4 MiB budget: read whole when alone; refused before reading while another
    large body holds part of the budget."""
    mib = 1024 * 1024
    raw = orjson.dumps({**completion_body("sized"), "padding": "x" * (6 * mib)})
    release = asyncio.Event()

    async def sized(req: Received, conn: Conn) -> None:
        await conn.send_head(200, {"Content-Type": "application/json", "Content-Length": str(len(raw))})
        await conn.send(raw)

    async def holding(req: Received, conn: Conn) -> None:
        await conn.send_head(200, {"Content-Type": "application/json"})
        await conn.send(b'{"padding": "' + b"x" * (3 * mib))
        await asyncio.wait_for(release.wait(), BOUND)
        conn.writer.close()

    config = ClientConfig.from_env({})
    async with (
        AsyncClient(config, num_retries=0, max_response_bytes=8 * mib, max_buffered_response_bytes=4 * mib) as c,
        serve(sized) as up,
        serve(holding) as hold,
    ):
        budget = c._transport._budget
        alone = await c.completion("openai/m", MESSAGES, api_base=up.openai_base, api_key=KEY)
        assert alone.choices[0].message.content == "sized" and budget.used == 0
        other = asyncio.create_task(c.completion("openai/m", MESSAGES, api_base=hold.openai_base, api_key=KEY))
        for _ in range(int(BOUND / 0.01)):
            if budget.used >= mib:
                break
            await asyncio.sleep(0.01)
        assert budget.used >= mib
        with pytest.raises(StreamError, match="max_buffered_response_bytes"):
            await c.completion("openai/m", MESSAGES, api_base=up.openai_base, api_key=KEY)
        release.set()
        with pytest.raises(StreamError):  # the held body ends cut short: malformed JSON
            await asyncio.wait_for(other, BOUND)
        assert budget.used == 0


async def test_large_bodies_let_go_are_trimmed_back_to_the_os(emulator: Any) -> None:
    """glibc keeps freed heap pages: after enough large bodies (refused here at 8 MiB each), a trim runs."""
    config = ClientConfig.from_env({})
    async with AsyncClient(config, num_retries=0, max_response_bytes=8 * 1024 * 1024) as c:
        returner = c._transport._budget.returner
        for _ in range(3):  # 3 x ~7 MiB charged and freed: past TRIM_AFTER (16 MiB)
            with pytest.raises(StreamError, match="max_response_bytes"):
                await c.completion("openai/m-fault-hugebody", MESSAGES, api_base=emulator.openai_base, api_key=KEY)
        for _ in range(int(BOUND / 0.05)):
            if returner.trims:
                break
            await asyncio.sleep(0.05)
        assert returner.trims == 1


# --- 11. retry-after ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{"retry-after": "nan"}, {"retry-after-ms": "1e400"}, {"retry-after": "1e300"}, {"retry-after": "inf"}]
)
async def test_absurd_retry_after_values_are_ignored(headers: dict[str, str]) -> None:
    async def limited_once(req: Received, conn: Conn) -> None:
        if len(conn.upstream.requests) == 1:
            await conn.respond(429, {"error": {"message": "slow down"}}, headers)
        else:
            await conn.respond(200, completion_body("ok"))

    async with serve(limited_once) as up, AsyncClient(ClientConfig.from_env({}), retry_max_delay=5) as c:
        started = time.monotonic()
        response = await c.completion("openai/m", MESSAGES, api_base=up.openai_base, api_key=KEY, num_retries=1)
    assert response.choices[0].message.content == "ok"  # retried after the ordinary backoff (< 0.5 s)
    assert time.monotonic() - started < 3
