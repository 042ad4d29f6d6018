"""The one module that does upstream HTTP: the aiohttp session, timeouts, retries, status -> exception.

aiohttp is imported lazily (it costs ~0.4 s) and no aiohttp type escapes this module.
A response that is abandoned (cancelled, closed early, errored) is closed, never returned to the
pool: closing the socket is what makes the provider stop generating.

Hostile upstreams: redirects are never followed (aiohttp would resend ``x-api-key``, ``api-key`` and the
prompt to the new host), a body is read up to ``ClientConfig.max_response_bytes`` (counted after
decompression, so a gzip bomb stops there too) and the bodies read at once share
``max_buffered_response_bytes`` (``_body_read``), and text built from an upstream's answer is redacted
(``_redact``) before it becomes an exception message.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from llmplex._body_read import BodyBudget, read_body, read_error_body
from llmplex._deadline import Deadlines
from llmplex._redact import display_url, redact_text, request_secrets
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
# A retry-after beyond this (or not a finite number) is ignored: backoff applies instead.
MAX_RETRY_AFTER = 3600.0

logger = logging.getLogger("llmplex.transport")


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
        self._budget = BodyBudget(config.max_buffered_response_bytes)  # shared by every body read at once

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
        self,
        request: HTTPRequest,
        adapter: ProviderAdapter,
        model: str,
        *,
        timeout: float,
        num_retries: int,
        max_bytes: int | None = None,
    ) -> tuple[bytes, Any]:
        """Send with retries inside one overall ``timeout``; return the body as received and parsed.

        ``max_bytes``: this body's cap instead of ``max_response_bytes`` (embeddings are allowed more).
        """
        limit = max_bytes or self.config.max_response_bytes
        deadline = time.monotonic() + timeout
        attempt = 0
        task = asyncio.current_task()
        assert task is not None
        self._deadlines.enter(task, task.get_loop().time() + timeout)
        try:
            while True:  # the retry loop is inline: this is every request's path
                try:
                    return await self._send_json(request, adapter, model, limit)
                except APIError as exc:
                    if not await self._wait_to_retry(exc, attempt, num_retries, deadline):
                        raise
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
                        if not await self._wait_to_retry(exc, attempt, num_retries, deadline):
                            raise
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
                        if not await self._wait_to_retry(exc, attempt, num_retries, deadline):
                            raise
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

    async def _wait_to_retry(self, exc: APIError, attempt: int, num_retries: int, deadline: float) -> bool:
        """Sleep and return True before the next attempt; False when ``exc`` must not be retried.

        The caller re-raises with a bare ``raise``: raising ``exc`` here would put this frame, which
        holds ``exc``, into its own traceback, a cycle that pins every outer frame until a full collection.
        """
        if attempt >= num_retries or not exc.retryable:
            return False
        delay = retry_delay(attempt, exc.retry_after)
        if delay is None or delay > self.config.retry_max_delay or time.monotonic() + delay > deadline:
            return False  # waiting would outlast what the caller allowed: fail now, not later
        await asyncio.sleep(delay)
        return True

    async def _send(self, request: HTTPRequest, adapter: ProviderAdapter, model: str) -> aiohttp.ClientResponse:
        import aiohttp

        session = self._current_session()
        try:
            proxy = self._proxy_for(request.url) if self.config.trust_env else None
            resp = await session.request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                proxy=proxy,
                allow_redirects=False,
            )
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            raise _send_error(exc, request, adapter, model, self.config.secrets) from None
        if 300 <= resp.status < 400:
            resp.close()
            raise redirect_error(resp.status, adapter, model)
        return resp

    async def _send_json(
        self, request: HTTPRequest, adapter: ProviderAdapter, model: str, limit: int
    ) -> tuple[bytes, Any]:
        import aiohttp

        # _send inlined: this is every non-streaming request's path, one coroutine less per call
        session = self._current_session()
        try:
            proxy = self._proxy_for(request.url) if self.config.trust_env else None
            resp = await session.request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                proxy=proxy,
                allow_redirects=False,
            )
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            raise _send_error(exc, request, adapter, model, self.config.secrets) from None
        status = resp.status
        if status >= 300:
            if status < 400:
                resp.close()
                raise redirect_error(status, adapter, model)
            raw = await read_error_body(resp)
            raise status_error(status, raw, resp.headers, adapter, model, self._secrets(request))
        try:
            raw = await read_body(resp, limit, self._budget, adapter, model)
        except BaseException as exc:
            resp.close()
            if isinstance(exc, (aiohttp.ClientError, OSError)):
                raise APIConnectionError(
                    f"connection lost while reading the response: {_describe(exc)}",
                    provider=adapter.name,
                    model=model,
                ) from None
            raise
        try:
            return raw, orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            # never the bytes themselves: an upstream may echo the request (its key, the prompt) back
            if logger.isEnabledFor(logging.DEBUG):
                text = redact_text(raw[:2000].decode("utf-8", errors="replace"), self._secrets(request))
                logger.debug("malformed JSON body from %s (HTTP %d): %r", adapter.name, status, text)
            raise StreamError(
                f"malformed JSON body from {adapter.name} (HTTP {status}, {len(raw)} bytes, "
                f"content-type {resp.headers.get('Content-Type', 'none')!r}): {exc.msg} at byte {exc.pos}",
                provider=adapter.name,
                model=model,
                status_code=status,
            ) from None

    def _secrets(self, request: HTTPRequest) -> list[str]:
        """Values never to show in a message about ``request``: its own key(s) and the configured ones."""
        return [*request_secrets(request.url, request.headers), *self.config.secrets]

    async def _send_stream(self, request: HTTPRequest, adapter: ProviderAdapter, model: str) -> RawStream:
        resp = await self._send(request, adapter, model)
        if resp.status >= 400:
            raw = await read_error_body(resp)
            raise status_error(resp.status, raw, resp.headers, adapter, model, self._secrets(request))
        return RawStream(resp)


def redirect_error(status: int, adapter: ProviderAdapter, model: str) -> APIStatusError:
    """A 3xx: never followed, since the request's key headers and prompt would go to the new location."""
    return APIStatusError(
        f"{adapter.name} answered HTTP {status} (a redirect); llmplex does not follow redirects, which "
        "would resend the API key elsewhere: set api_base to the final URL",
        provider=adapter.name,
        model=model,
        status_code=status,
        type="redirect_error",
    )


async def iter_chunks(stream: RawStream) -> AsyncIterator[bytes]:
    while True:
        data = await stream.read_chunk()
        if not data:
            return
        yield data


def status_error(
    status: int,
    raw: bytes,
    headers: Mapping[str, str],
    adapter: ProviderAdapter,
    model: str,
    secrets: Sequence[str] = (),
) -> APIStatusError:
    """The typed error for an error answer; keys (``secrets`` and anything key-shaped) redacted from it."""
    if raw:
        text = raw.decode("utf-8", errors="replace")
        redacted = redact_text(text, secrets)
        if redacted != text:  # an upstream that echoes the request's key or headers back
            raw = redacted.encode()
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
    """Seconds to wait: ``retry-after-ms`` first, then ``retry-after`` (seconds or an HTTP date).

    Only finite values up to ``MAX_RETRY_AFTER`` count (``nan``, ``inf``, ``1e300`` are ignored).
    """
    value = headers.get("retry-after-ms")
    if value:
        seconds = _seconds(value, 1000.0)
        if seconds is not None:
            return seconds
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = _seconds(value, 1.0)
    if seconds is not None:
        return seconds
    try:
        import email.utils  # lazily: only HTTP-date retry-after values need it

        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return _in_range(float(when.timestamp()) - time.time())


def _seconds(value: str, per_second: float) -> float | None:
    try:
        return _in_range(float(value) / per_second)
    except ValueError:
        return None


def _in_range(seconds: float) -> float | None:
    """A finite wait up to ``MAX_RETRY_AFTER`` (a negative one means "now"); anything else is ignored."""
    if not math.isfinite(seconds) or seconds > MAX_RETRY_AFTER:
        return None
    return max(seconds, 0.0)


def retry_delay(attempt: int, retry_after: float | None) -> float | None:
    """Delay before retry ``attempt + 1``: the server's ``retry-after`` when given, else backoff with jitter."""
    if retry_after is not None and retry_after > 0:
        return retry_after
    return min(0.5 * 2.0**attempt, 8.0) * (1 - 0.25 * random.random())


def _send_error(
    exc: BaseException, request: HTTPRequest, adapter: ProviderAdapter, model: str, secrets: Sequence[str]
) -> APIError:
    """The typed error for a request that could not be sent (or got no response head); no credentials shown."""
    import aiohttp

    if isinstance(exc, TimeoutError):
        return Timeout("timed out connecting", provider=adapter.name, model=model)
    hidden = [*request_secrets(request.url, request.headers), *secrets]
    if isinstance(exc, aiohttp.InvalidURL):
        return APIConnectionError(
            f"invalid URL {display_url(request.url)!r}: {redact_text(_describe(exc), hidden)}",
            provider=adapter.name,
            model=model,
        )
    return APIConnectionError(
        f"cannot reach {display_url(request.url)}: {redact_text(_describe(exc), hidden)}",
        provider=adapter.name,
        model=model,
    )


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__  # some aiohttp errors have an empty message
