"""``AsyncClient``: the implementation of every llmplex call. ``Client`` (in ``_sync``) is its blocking facade.

One client owns one transport (one aiohttp session). Use it as ``async with AsyncClient() as c``
or call ``await c.aclose()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, overload

from pydantic import ValidationError

from llmplex._controls import CLIENT_CONTROLS, complete_with_controls
from llmplex._latency import LatencyTracker
from llmplex._mock import mock_completion
from llmplex._request import ResolvedCall, resolve_call
from llmplex._streaming import CompletionStream
from llmplex._transport import RawStream, Transport
from llmplex.config import ClientConfig
from llmplex.cost import HiddenParams
from llmplex.exceptions import APIError, BadRequestError, unreadable_response
from llmplex.providers.base import HTTPRequest, ProviderAdapter
from llmplex.relayed import RelayedResponse, relayable
from llmplex.types import ModelResponse

__all__ = ["AsyncClient"]


class AsyncClient:
    """Async LLM client. ``config`` defaults to ``ClientConfig.from_env()``; keyword overrides apply on top."""

    def __init__(self, config: ClientConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else ClientConfig.from_env()
        self.config = base.with_overrides(**overrides) if overrides else base
        self._transport = Transport(self.config)
        # latency of successful completions per model string, for hedge_delay="auto" (see _latency)
        self.latency = LatencyTracker()

    async def completion(
        self, model: str, messages: list[dict[str, Any]], **options: Any
    ) -> ModelResponse | CompletionStream:
        """One chat completion, OpenAI-shaped; ``stream=True`` returns a ``CompletionStream``.

        LiteLLM's controls (``fallbacks=[model, ...]``, ``mock_testing_fallbacks``, ...) are in ``_controls``.
        """
        if options and not CLIENT_CONTROLS.isdisjoint(options):
            return await complete_with_controls(self, model, messages, options)
        return await self.run_call(resolve_call(model, messages, options, self.config))

    @overload
    async def run_call(self, call: ResolvedCall) -> ModelResponse | CompletionStream: ...

    @overload
    async def run_call(
        self, call: ResolvedCall, *, relay: bool
    ) -> ModelResponse | RelayedResponse | CompletionStream: ...

    async def run_call(
        self, call: ResolvedCall, *, relay: bool = False
    ) -> ModelResponse | RelayedResponse | CompletionStream:
        """Send a call resolved beforehand (``resolve_call``, or ``resolve_prepared`` for fixed settings).

        ``relay=True`` (a gateway forwarding the answer): an OpenAI-compatible provider's answer comes
        back as a ``RelayedResponse``, its bytes unvalidated beyond their outline, and a stream's chunks
        come from ``next_batch()`` as ``RelayedChunk``s (see ``llmplex.relayed``).
        """
        if call.mock_response is not None:
            return await mock_completion(call)
        adapter = call.adapter
        try:
            if call.request.stream:
                return await self._open_stream(call, relay)
            # the non-streaming call, inline: it is every batch item's and proxied request's path
            assert call.endpoint is not None
            started = time.perf_counter()
            raw, body = await self._transport.request_json(
                adapter.build_request(call.request, call.endpoint),
                adapter,
                call.request.model,
                timeout=call.timeout,
                num_retries=call.num_retries,
            )
            if relay and adapter.relays_wire and relayable(body):
                return self._relayed(call, raw, body, started)
            response = adapter.parse_response(body, call.request)
        except ValidationError as exc:  # JSON, but not a chat completion: the provider's fault, typed
            raise unreadable_response(exc, adapter.name, call.request.model) from None
        except APIError as exc:
            if exc.provider is None:
                exc.provider = adapter.name
            if exc.model is None:
                exc.model = call.request.model
            raise
        if adapter.relays_wire:
            response._keep_wire(raw)
        hidden = HiddenParams(call.hidden)
        hidden["api_base"] = call.endpoint.base_url
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        hidden["response_ms"] = elapsed_ms
        self.latency.record(call.label, elapsed_ms)
        hidden.bind_response(response)
        response._hidden_params = hidden
        return response

    def _relayed(self, call: ResolvedCall, raw: bytes, body: dict[str, Any], started: float) -> RelayedResponse:
        assert call.endpoint is not None
        hidden = HiddenParams(call.hidden)
        hidden["api_base"] = call.endpoint.base_url
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        hidden["response_ms"] = elapsed_ms
        self.latency.record(call.label, elapsed_ms)
        response = RelayedResponse(raw, body, hidden)
        counts = response.usage_counts() or {}
        hidden.bind(response.model, counts.get("prompt_tokens", 0), counts.get("completion_tokens", 0))
        return response

    async def _open_stream(self, call: ResolvedCall, relay: bool = False) -> CompletionStream:
        assert call.endpoint is not None
        adapter = call.adapter
        http = adapter.build_request(call.request, call.endpoint)
        started = asyncio.get_running_loop().time()
        # waiting for the head past the first-token deadline is pointless: no token can come in time
        raw = await self._transport.open_stream(
            http,
            adapter,
            call.request.model,
            timeout=min(call.timeout, call.first_token_timeout),
            num_retries=call.num_retries,
        )
        hidden = dict(call.hidden)
        hidden["api_base"] = call.endpoint.base_url
        return CompletionStream(
            raw,
            adapter,
            call.request,
            first_token_timeout=call.first_token_timeout,
            idle_timeout=call.idle_timeout,
            total_timeout=call.timeout,
            started=started,
            max_event_bytes=self.config.max_stream_event_bytes,
            hidden_params=hidden,
            relay=relay,
        )

    async def send_json(
        self,
        request: HTTPRequest,
        adapter: ProviderAdapter,
        model: str,
        *,
        timeout: float,
        num_retries: int,
        max_bytes: int | None = None,
    ) -> tuple[bytes, Any]:
        """Send one prepared request of any capability (retries, timeout, typed errors from ``adapter``)."""
        return await self._transport.request_json(
            request, adapter, model, timeout=timeout, num_retries=num_retries, max_bytes=max_bytes
        )

    async def open_raw_stream(
        self, request: HTTPRequest, adapter: ProviderAdapter, model: str, *, timeout: float, num_retries: int
    ) -> RawStream:
        """Open one prepared streaming request of any capability; the caller reads and closes it."""
        return await self._transport.open_stream(request, adapter, model, timeout=timeout, num_retries=num_retries)

    # --- endpoints beyond chat (implemented in llmplex.embeddings / llmplex.text_completions) ----

    async def embedding(self, model: str | list[str], input: Any, **options: Any) -> Any:
        """Embeddings (OpenAI's shape); long input lists are split per the provider's limits and run
        concurrently (``max_concurrency``, ``rpm``, ``tpm``, ``checkpoint``, ``progress``); several models
        (``"a, b"`` or a list) give one response per model. See ``llmplex.embeddings``."""
        from llmplex import embeddings

        return await embeddings.embedding(self, model, input, **embeddings.embedding_options(options))

    async def text_completion(self, prompt: Any, model: str | None = None, **options: Any) -> Any:
        """A legacy text completion (``TextCompletionResponse``, or a stream of them with ``stream=True``):
        native ``/completions`` where the provider serves it, else through chat. LiteLLM's argument order
        (``prompt`` first; ``engine=`` is an alias of ``model``). See ``llmplex.text_completions``."""
        from llmplex import text_completions

        model = model or options.pop("engine", None)
        if not isinstance(model, str) or not model:
            raise BadRequestError("text_completion needs model=", param="model")
        return await text_completions.text_completion(self, model, prompt, **options)

    # --- batch shapes (implemented in llmplex.batch) ---------------------------------------------

    async def batch_completion(self, model: str, messages: list[list[dict[str, Any]]], **options: Any) -> list[Any]:
        """Many prompts -> one model; results aligned with ``messages`` (see ``llmplex.batch``)."""
        from llmplex import batch

        return await batch.batch_completion(self, model, messages, **options)

    def iter_batch_completion(
        self, model: str, messages: list[list[dict[str, Any]]], **options: Any
    ) -> AsyncIterator[tuple[int, Any]]:
        """``(index, result)`` pairs as each prompt finishes."""
        from llmplex import batch

        return batch.iter_batch_completion(self, model, messages, **options)

    async def batch_completion_models(self, *args: Any, **options: Any) -> ModelResponse | CompletionStream:
        """One prompt -> many models; the first successful answer wins, the others are cancelled."""
        from llmplex import batch

        return await batch.batch_completion_models(self, *args, **options)

    async def batch_completion_models_all_responses(self, *args: Any, **options: Any) -> list[Any]:
        """One prompt -> many models; every answer, in ``models`` order."""
        from llmplex import batch

        return await batch.batch_completion_models_all_responses(self, *args, **options)

    async def open(self) -> None:
        """Create the HTTP session now, in the running loop, instead of at the first request (which would
        otherwise pay for importing the HTTP stack, ~0.1-0.3 s). Servers call it before they say ready."""
        await self._transport.session()

    async def aclose(self) -> None:
        """Close the HTTP session; in-flight requests on it fail."""
        await self._transport.aclose()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop the session is bound to (None before the first request)."""
        return self._transport.loop

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
