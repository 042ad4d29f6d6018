"""The transport against real loopback servers: retries, retry-after, timeouts, connection errors, cancellation."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time
from typing import Any

import orjson
import pytest

from llmplex import (
    APIConnectionError,
    APIError,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    ClientConfig,
    ConflictError,
    InternalServerError,
    ModelResponse,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    Timeout,
    UnprocessableEntityError,
)
from llmplex._transport import parse_retry_after, retry_delay
from llmplex.exceptions import APIStatusError
from tests.raw_upstream import Conn, RawUpstream, Received, completion_body, serve

MESSAGES = [{"role": "user", "content": "hi"}]


def client(**overrides: Any) -> AsyncClient:
    return AsyncClient(ClientConfig.from_env({}), **overrides)


async def call(upstream: RawUpstream, **options: Any) -> Any:
    async with client() as c:
        return await c.completion("openai/m", MESSAGES, api_base=upstream.openai_base, api_key="k", **options)


def error_body(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "test_error", "code": "e1"}}


def always(status: int, headers: dict[str, str] | None = None) -> Any:
    async def handler(req: Received, conn: Conn) -> None:
        await conn.respond(status, error_body(f"status {status}"), headers)

    return handler


def fail_then_ok(failures: int, status: int, headers: dict[str, str] | None = None) -> Any:
    async def handler(req: Received, conn: Conn) -> None:
        if len(conn.upstream.requests) <= failures:
            await conn.respond(status, error_body("try later"), headers)
        else:
            await conn.respond(200, completion_body())

    return handler


async def test_request_shape_on_the_wire() -> None:
    async def handler(req: Received, conn: Conn) -> None:
        await conn.respond(200, completion_body("hello"))

    async with serve(handler) as up:
        response = await call(up, temperature=0)
    assert isinstance(response, ModelResponse)
    assert response.choices[0].message.content == "hello"
    (req,) = up.requests
    assert req.method == "POST" and req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer k"
    assert req.headers["content-type"] == "application/json"
    assert req.json() == {"model": "m", "messages": MESSAGES, "temperature": 0}
    assert response.hidden_params["api_base"] == up.openai_base


async def test_an_openai_compatible_body_keeps_its_wire_form() -> None:
    """The proxy relays what the provider sent byte for byte (spacing, key order, vendor fields)."""
    body = orjson.dumps(completion_body("hello"), option=orjson.OPT_INDENT_2)[:-1] + b', "x_vendor": {"a": 1}}'

    async def handler(req: Received, conn: Conn) -> None:
        await conn.respond(200, body)

    async with serve(handler) as up:
        response = await call(up)
    assert isinstance(response, ModelResponse)
    assert response.wire_bytes() == body
    assert orjson.loads(response.json_bytes()) == orjson.loads(body)
    mocked = await client().completion("openai/m", MESSAGES, mock_response="hi")
    assert isinstance(mocked, ModelResponse) and mocked.wire_bytes() == mocked.json_bytes()


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (422, UnprocessableEntityError),
    ],
)
async def test_client_errors_are_not_retried(status: int, cls: type[APIStatusError]) -> None:
    async with serve(always(status, {"x-request-id": "req-1"})) as up:
        with pytest.raises(cls) as info:
            await call(up, num_retries=3)
    assert len(up.requests) == 1
    err = info.value
    assert type(err) is cls
    assert err.status_code == status
    assert err.provider == "openai" and err.model == "m"
    assert err.body == error_body(f"status {status}")
    assert err.message == f"status {status}"
    assert err.code == "e1" and err.type == "test_error"
    assert err.request_id == "req-1"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (408, APIStatusError),
        (409, ConflictError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, InternalServerError),
        (503, ServiceUnavailableError),
        (529, ServiceUnavailableError),
    ],
)
async def test_retryable_statuses_are_retried(status: int, cls: type[APIStatusError]) -> None:
    async with serve(always(status, {"retry-after-ms": "10"})) as up:
        with pytest.raises(cls) as info:
            await call(up, num_retries=2)
    assert len(up.requests) == 3
    assert isinstance(info.value, cls)
    assert info.value.retryable


async def test_retry_then_success() -> None:
    async with serve(fail_then_ok(2, 503, {"retry-after-ms": "10"})) as up:
        response = await call(up, num_retries=2)
    assert isinstance(response, ModelResponse)
    assert len(up.requests) == 3


async def test_num_retries_zero() -> None:
    async with serve(always(500)) as up:
        with pytest.raises(InternalServerError):
            await call(up, num_retries=0)
    assert len(up.requests) == 1


async def test_default_num_retries_is_two_with_backoff() -> None:
    async with serve(always(500)) as up:
        started = time.monotonic()
        with pytest.raises(InternalServerError):
            await call(up)
    assert len(up.requests) == 3
    gaps = [b.at - a.at for a, b in zip(up.requests, up.requests[1:], strict=False)]
    # backoff 0.5 s then 1 s, each with up to 25 % jitter subtracted
    assert gaps[0] >= 0.37 and gaps[1] >= 0.75, gaps
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("headers", "minimum", "maximum"),
    [
        ({"retry-after": "1"}, 1.0, 3.0),
        ({"retry-after-ms": "400"}, 0.4, 1.5),
        ({"retry-after": "5", "retry-after-ms": "300"}, 0.3, 1.5),  # -ms is the precise one: it wins
    ],
)
async def test_retry_after_is_honoured(headers: dict[str, str], minimum: float, maximum: float) -> None:
    async with serve(fail_then_ok(1, 429, headers)) as up:
        response = await call(up, num_retries=1)
    assert isinstance(response, ModelResponse)
    assert len(up.requests) == 2
    waited = up.requests[1].at - up.requests[0].at
    assert minimum <= waited < maximum, waited


async def test_exhausted_retries_raise_rate_limit_error_with_status_and_body() -> None:
    async with serve(always(429, {"retry-after-ms": "20"})) as up:
        with pytest.raises(RateLimitError) as info:
            await call(up, num_retries=1)
    err = info.value
    assert err.status_code == 429
    assert err.body == error_body("status 429")
    assert err.retry_after == pytest.approx(0.02)
    assert len(up.requests) == 2


async def test_retry_after_longer_than_the_timeout_fails_fast() -> None:
    async with serve(always(429, {"retry-after": "30"})) as up:
        started = time.monotonic()
        with pytest.raises(RateLimitError):
            await call(up, num_retries=3, timeout=2)
    assert time.monotonic() - started < 1.5
    assert len(up.requests) == 1


async def test_timeout_bounds_a_slow_response() -> None:
    async def handler(req: Received, conn: Conn) -> None:
        await conn.wait_client_gone(timeout=10)

    async with serve(handler) as up:
        started = time.monotonic()
        with pytest.raises(Timeout) as info:
            await call(up, timeout=0.5, num_retries=3)
        elapsed = time.monotonic() - started
        assert await asyncio.wait_for(up.disconnected.wait(), 5)
    assert 0.5 <= elapsed < 2.0
    assert info.value.provider == "openai"
    assert isinstance(info.value, APIConnectionError)  # Timeout is a connection error, as in LiteLLM


async def test_timeout_bounds_the_whole_call_including_retries() -> None:
    async def handler(req: Received, conn: Conn) -> None:
        await asyncio.sleep(0.3)
        await conn.respond(500, error_body("slow failure"), {"retry-after-ms": "100"})

    async with serve(handler) as up:
        started = time.monotonic()
        with pytest.raises((Timeout, InternalServerError)):
            await call(up, timeout=1.0, num_retries=20)
        elapsed = time.monotonic() - started
    assert elapsed < 1.6
    assert 2 <= len(up.requests) <= 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_refused() -> None:
    port = free_port()
    async with client() as c:
        started = time.monotonic()
        with pytest.raises(APIConnectionError) as info:
            await c.completion(
                "openai/m", MESSAGES, api_base=f"http://127.0.0.1:{port}/v1", api_key="secret-key", num_retries=1
            )
    assert type(info.value) is APIConnectionError
    assert info.value.provider == "openai"
    assert info.value.retryable
    assert "secret-key" not in str(info.value)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("body", [b"{not json", b"", b"<html>502 Bad Gateway</html>"])
async def test_malformed_json_body_is_a_typed_error(body: bytes) -> None:
    async def handler(req: Received, conn: Conn) -> None:
        await conn.respond(200, body)

    async with serve(handler) as up:
        with pytest.raises(APIError) as info:
            await call(up, num_retries=0)
    assert info.value.provider == "openai"
    assert info.value.status_code == 200
    assert "malformed" in str(info.value)


async def test_non_json_error_body_is_kept_as_text() -> None:
    async def handler(req: Received, conn: Conn) -> None:
        await conn.respond(502, b"<html>bad gateway</html>", {"Content-Type": "text/html"})

    async with serve(handler) as up:
        with pytest.raises(InternalServerError) as info:
            await call(up, num_retries=0)
    assert info.value.status_code == 502
    assert info.value.body == "<html>bad gateway</html>"


async def test_connection_reset_mid_body_is_a_connection_error() -> None:
    async def handler(req: Received, conn: Conn) -> None:
        await conn.send_head(200, {"Content-Type": "application/json", "Content-Length": "1000"})
        await conn.send(b'{"id": "x", ')
        conn.writer.transport.abort()

    async with serve(handler) as up:
        with pytest.raises(APIConnectionError):
            await call(up, num_retries=1)
    assert len(up.requests) == 2  # a connection error is retried


async def test_cancelled_request_closes_its_connection() -> None:
    async def handler(req: Received, conn: Conn) -> None:
        await conn.wait_client_gone(timeout=10)

    async with serve(handler) as up, client() as c:
        task = asyncio.create_task(c.completion("openai/m", MESSAGES, api_base=up.openai_base, api_key="k", timeout=30))
        await asyncio.wait_for(up.got_request.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.wait_for(up.disconnected.wait(), 5)
    assert up.disconnects == 1


async def test_sessions_are_reused_and_closed() -> None:
    async with serve(fail_then_ok(0, 200)) as up:
        c = client()
        for _ in range(3):
            await c.completion("openai/m", MESSAGES, api_base=up.openai_base, api_key="k")
        session = await c._transport.session()
        assert session is await c._transport.session()
        await c.aclose()
        assert session.closed


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "junk", "retry-after": "3"}, 3.0),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "soon"}, None),
        # not finite, or absurdly far: ignored (the proxy would turn 1e300 into a 301-digit header)
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "1e300"}, None),
        ({"retry-after": "3601"}, None),
        ({"retry-after": "3600"}, 3600.0),
        ({"retry-after-ms": "1e400"}, None),
        ({"retry-after-ms": "nan", "retry-after": "2"}, 2.0),
        ({"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    value = parse_retry_after({"retry-after": when})
    assert value is not None and 27 <= value <= 31


def test_backoff_grows_and_is_capped() -> None:
    delays = [retry_delay(attempt, None) or 0.0 for attempt in range(8)]
    assert 0.375 <= delays[0] <= 0.5
    assert 0.75 <= delays[1] <= 1.0
    assert 6.0 <= max(delays) <= 8.0
    assert retry_delay(0, 4.0) == 4.0
