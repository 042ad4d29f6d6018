"""The one module that does upstream HTTP: the aiohttp session, timeouts, retries, status -> exception.

aiohttp is imported lazily (it costs ~0.4 s) and no aiohttp type escapes this module.
A response that is abandoned (cancelled, closed early, errored) is closed, never returned to the
pool: closing the socket is what makes the provider stop generating.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from llmplex._deadline import Deadlines
from llmplex.config import ClientConfig
from llmplex.exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    AuthenticationError,
    ServiceUnavailableError,
    StreamError,
    Timeout,
    status_error_class,
)
from llmplex.providers.base import HTTPRequest, ProviderAdapter

if TYPE_CHECKING:
    import aiohttp

__all__ = ["RawStream", "Transport", "retry_delay"]

USER_AGENT = "llmplex"


class RawStream:
    """An open streaming response: byte chunks in, ``close()`` to abandon it."""

    __slots__ = ("_done", "_resp", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self._done = False
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers

    async def read_chunk(self) -> bytes:
        """The next bytes, or ``b""`` at the end of the body."""
        import aiohttp

        try:
            data = await self._resp.content.readany()
        except aiohttp.ClientPayloadError as exc:
            self.close()
            raise StreamError(f"stream body broken: {exc}") from None
        except (aiohttp.ClientConnectionError, OSError) as exc:
            self.close()
            raise APIConnectionError(f"connection lost mid-stream: {_describe(exc)}") from None
        if not data:
            self._done = True
            self._resp.release()  # body fully read: the connection may be reused
        return data

    def release_if_received(self) -> bool:
        """Release the connection now if the whole body has already arrived (no task needed to drain it)."""
        if self._done:
            return True
        content = self._resp.content
        if not content.is_eof():
            return False
        content.read_nowait()  # whatever trailing bytes are buffered
        self._done = True
        self._resp.release()
        return True

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._resp.close()


class Transport:
    """Owns one ``aiohttp.ClientSession``, created lazily on the loop that uses it."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proxies: dict[str, str | None] = {}
        self._deadlines = Deadlines()  # the overall timeout of each request_json call

    async def session(self) -> aiohttp.ClientSession:
        return self._current_session()

    def _current_session(self) -> aiohttp.ClientSession:
        """The session, created on first use inside the running loop (aiohttp binds it to that loop)."""
        session = self._session
        if session is not None and not session.closed:
            return session
        import aiohttp

        loop = asyncio.get_running_loop()
        connector = aiohttp.TCPConnector(
            limit=self.config.max_connections, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=30
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            # proxies are resolved per origin below: aiohttp's trust_env costs two thread hops per request
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            headers={"User-Agent": USER_AGENT},
        )
        self._loop = loop
        return self._session

    def _proxy_for(self, url: str) -> str | None:
        """The HTTP(S)_PROXY for ``url`` from the config's environment (NO_PROXY honoured), cached per origin."""
        scheme, _, rest = url.partition("://")
        origin = scheme + "://" + rest.split("/", 1)[0]
        if origin in self._proxies:
            return self._proxies[origin]
        env = self.config.environ
        proxy = None
        for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY"):
            if env.get(name):
                proxy = env[name]
                break
        if proxy is not None:
            no_proxy = env.get("no_proxy") or env.get("NO_PROXY") or ""
            host = rest.split("/", 1)[0]
            import urllib.request  # lazily: it pulls in http.client and ssl

            if no_proxy and urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
                host, proxies={"no": no_proxy}
            ):
                proxy = None
        self._proxies[origin] = proxy
        return proxy

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def request_json(
        self, request: HTTPRequest, adapter: ProviderAdapter, model: str, *, timeout: float, num_retries: int
    ) -> tuple[bytes, Any]:
        """Send with retries inside one overall ``timeout``; return the body as received and parsed."""
        deadline = time.monotonic() + timeout
        attempt = 0
        task = asyncio.current_task()
        assert task is not None
        self._deadlines.enter(task, task.get_loop().time() + timeout)
        try:
            while True:  # the retry loop is inline: this is every request's path
                try:
                    return await self._send_json(request, adapter, model)
                except APIError as exc:
                    await self._before_retry(exc, attempt, num_retries, deadline)
                    attempt += 1
        except asyncio.CancelledError:
            if self._deadlines.leave(task) and task.uncancel() == 0:
                raise Timeout(f"request timed out after {timeout:g}s", provider=adapter.name, model=model) from None
            raise
        finally:
            self._deadlines.leave(task)

    async def open_stream(
        self, request: HTTPRequest, adapter: ProviderAdapter, model: str, *, timeout: float, num_retries: int
    ) -> RawStream:
        """Send with retries until a 200 arrives (``timeout`` bounds that); return the open body."""
        deadline = time.monotonic() + timeout
        attempt = 0
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        return await self._send_stream(request, adapter, model)
                    except APIError as exc:
                        await self._before_retry(exc, attempt, num_retries, deadline)
                        attempt += 1
        except TimeoutError:
            raise Timeout(f"no response within {timeout:g}s", provider=adapter.name, model=model) from None

    async def request_bytes(
        self, request: HTTPRequest, adapter: ProviderAdapter, model: str, *, timeout: float, num_retries: int
    ) -> bytes:
        """Like ``request_json`` but the body is returned as received: file downloads, JSONL results."""
        deadline = time.monotonic() + timeout
        attempt = 0
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        return await self._send_bytes(request, adapter, model)
                    except APIError as exc:
                        await self._before_retry(exc, attempt, num_retries, deadline)
                        attempt += 1
        except TimeoutError:
            raise Timeout(f"request timed out after {timeout:g}s", provider=adapter.name, model=model) from None

    async def _send_bytes(self, request: HTTPRequest, adapter: ProviderAdapter, model: str) -> bytes:
        import aiohttp

        resp = await self._send(request, adapter, model)
        try:
            raw = await resp.read()
        except BaseException as exc:
            resp.close()
            if isinstance(exc, (aiohttp.ClientError, OSError)):
                message = f"connection lost while reading the response: {_describe(exc)}"
                raise APIConnectionError(message, provider=adapter.name, model=model) from None
            raise
        if resp.status >= 400:
            raise status_error(resp.status, raw, resp.headers, adapter, model)
        return raw

    async def _before_retry(self, exc: APIError, attempt: int, num_retries: int, deadline: float) -> None:
        """Sleep before the next attempt, or re-raise ``exc`` when it must not be retried."""
        if attempt >= num_retries or not exc.retryable:
            raise exc
        delay = retry_delay(attempt, exc.retry_after)
        if delay is None or delay > self.config.retry_max_delay or time.monotonic() + delay > deadline:
            raise exc  # waiting would outlast what the caller allowed: fail now, not later
        await asyncio.sleep(delay)

    async def _send(self, request: HTTPRequest, adapter: ProviderAdapter, model: str) -> aiohttp.ClientResponse:
        import aiohttp

        session = self._current_session()
        try:
            proxy = self._proxy_for(request.url) if self.config.trust_env else None
            return await session.request(
                request.method, request.url, data=request.body, headers=request.headers, proxy=proxy
            )
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            raise _send_error(exc, request, adapter, model) from None

    async def _send_json(self, request: HTTPRequest, adapter: ProviderAdapter, model: str) -> tuple[bytes, Any]:
        import aiohttp

        # _send inlined: this is every non-streaming request's path, one coroutine less per call
        session = self._current_session()
        try:
            proxy = self._proxy_for(request.url) if self.config.trust_env else None
            resp = await session.request(
                request.method, request.url, data=request.body, headers=request.headers, proxy=proxy
            )
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            raise _send_error(exc, request, adapter, model) from None
        try:
            raw = await resp.read()
        except BaseException as exc:
            resp.close()
            if isinstance(exc, (aiohttp.ClientError, OSError)):
                raise APIConnectionError(
                    f"connection lost while reading the response: {_describe(exc)}",
                    provider=adapter.name,
                    model=model,
                ) from None
            raise
        if resp.status >= 400:
            raise status_error(resp.status, raw, resp.headers, adapter, model)
        try:
            return raw, orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise StreamError(
                f"malformed JSON body from {adapter.name} (HTTP {resp.status}): {raw[:200]!r}",
                provider=adapter.name,
                model=model,
                status_code=resp.status,
            ) from None

    async def _send_stream(self, request: HTTPRequest, adapter: ProviderAdapter, model: str) -> RawStream:
        resp = await self._send(request, adapter, model)
        if resp.status >= 400:
            try:
                raw = await resp.read()
            except BaseException:
                resp.close()
                raw = b""
            raise status_error(resp.status, raw, resp.headers, adapter, model)
        return RawStream(resp)


async def iter_chunks(stream: RawStream) -> AsyncIterator[bytes]:
    while True:
        data = await stream.read_chunk()
        if not data:
            return
        yield data


def status_error(
    status: int, raw: bytes, headers: Mapping[str, str], adapter: ProviderAdapter, model: str
) -> APIStatusError:
    body: Any
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = raw.decode("utf-8", errors="replace")
    details = adapter.parse_error(status, body)
    refined = adapter.refine_error_class(status, details)
    cls = refined or status_error_class(status)
    if refined is AuthenticationError or refined is ServiceUnavailableError:
        status = refined.status_code or status
    elif status == 529:
        status = 503
    return cls(
        details.message,
        provider=adapter.name,
        model=model,
        status_code=status,
        body=body,
        code=details.code,
        type=details.type,
        param=details.param,
        request_id=headers.get("x-request-id") or headers.get("request-id"),
        retry_after=parse_retry_after(headers),
    )


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait: ``retry-after-ms`` first, then ``retry-after`` (seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(float(value) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        import email.utils  # lazily: only HTTP-date retry-after values need it

        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(float(when.timestamp()) - time.time(), 0.0)


def retry_delay(attempt: int, retry_after: float | None) -> float | None:
    """Delay before retry ``attempt + 1``: the server's ``retry-after`` when given, else backoff with jitter."""
    if retry_after is not None and retry_after > 0:
        return retry_after
    return min(0.5 * 2.0**attempt, 8.0) * (1 - 0.25 * random.random())


def _send_error(exc: BaseException, request: HTTPRequest, adapter: ProviderAdapter, model: str) -> APIError:
    """The typed error for a request that could not be sent (or got no response head)."""
    import aiohttp

    if isinstance(exc, TimeoutError):
        return Timeout("timed out connecting", provider=adapter.name, model=model)
    if isinstance(exc, aiohttp.InvalidURL):
        return APIConnectionError(f"invalid URL {exc}", provider=adapter.name, model=model)
    return APIConnectionError(
        f"cannot reach {_origin(request.url)}: {_describe(exc)}", provider=adapter.name, model=model
    )


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__  # some aiohttp errors have an empty message


def _origin(url: str) -> str:
    # never echo query strings: some providers (Gemini) put the key there
    return url.split("?", 1)[0]
