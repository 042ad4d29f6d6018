"""The emulator's Starlette app: provider routes, the request pipeline and the counters."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmplex.emulator.anthropic import AnthropicCountTokensDialect, AnthropicDialect
from llmplex.emulator.anthropic_batches import anthropic_batch_routes
from llmplex.emulator.azure import AzureDialect
from llmplex.emulator.cohere import CohereDialect
from llmplex.emulator.conversation import build_reply
from llmplex.emulator.dialect import JSON, Dialect, Failure, Headers, Incoming
from llmplex.emulator.directives import Directives, Settings, parse_directives
from llmplex.emulator.embeddings import (
    AzureEmbeddingDialect,
    CohereEmbedDialect,
    GeminiEmbedDialect,
    OpenAIEmbeddingDialect,
)
from llmplex.emulator.exchange import ClientGone, Exchange, Receive, Send
from llmplex.emulator.gemini import GeminiDialect
from llmplex.emulator.gemini_batches import gemini_batch_routes
from llmplex.emulator.hostile import HOSTILE, play_hostile
from llmplex.emulator.openai import OpenAIDialect
from llmplex.emulator.openai_batches import openai_batch_routes
from llmplex.emulator.playback import play_completion, play_stream
from llmplex.emulator.refusals import REFUSALS, play_refusal
from llmplex.emulator.text_completions import TextCompletionDialect

__all__ = ["EmulatorState", "create_app"]

_ARRIVALS_KEPT = 100_000


class EmulatorState:
    """Counters for the model-call routes, plus the per-model-name fault counts behind ``times-<n>``.

    ``completed``: the scripted answer was played to its end (a ``fault-reset`` too: the emulator, not
    the client, cut it). ``disconnected``: the client left before that. ``in_flight`` is a live gauge
    that ``reset()`` leaves alone.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.in_flight = 0
        # (time.monotonic(), time.time(), model) of each model call, to check a client's rate limits (windows
        # aligned on either clock); cleared by /_emulator/reset
        self.arrivals: deque[tuple[float, float, str]] = deque(maxlen=_ARRIVALS_KEPT)
        self.reset()

    def reset(self) -> None:
        self.received = 0
        self.completed = 0
        self.disconnected = 0
        self.redirected = 0  # requests that followed a fault-redirect
        self.redirected_with_key = 0  # ... and carried a key header
        self._fault_hits: dict[str, int] = {}

    def snapshot(self) -> dict[str, int]:
        return {
            "received": self.received,
            "completed": self.completed,
            "disconnected": self.disconnected,
            "in_flight": self.in_flight,
            "redirected": self.redirected,
            "redirected_with_key": self.redirected_with_key,
        }

    def should_fault(self, model: str, directives: Directives) -> bool:
        if not directives.faulty:
            return False
        if directives.times is None:
            return True
        hits = self._fault_hits.get(model, 0) + 1
        self._fault_hits[model] = hits
        return hits <= directives.times


class CompletionEndpoint:
    """A raw ASGI endpoint (no Request/Response objects) so it owns ``receive`` for disconnect detection."""

    __slots__ = ("dialect", "state")

    def __init__(self, dialect: Dialect, state: EmulatorState) -> None:
        self.dialect = dialect
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        state = self.state
        state.received += 1
        state.in_flight += 1
        exchange = Exchange(receive, send)
        outcome = "completed"
        try:
            await self._serve(scope, exchange)
        except ClientGone:
            outcome = "disconnected"
        except asyncio.CancelledError:
            # uvicorn cancels what is still running (stalls) when its graceful-shutdown wait ends;
            # ending quietly spares a traceback per stalled client
            outcome = "disconnected"
        except BaseException:
            outcome = "error"  # a bug here: counted nowhere, so received != completed + disconnected shows it
            raise
        finally:
            exchange.close()
            state.in_flight -= 1
            if outcome == "completed":
                state.completed += 1
            elif outcome == "disconnected":
                state.disconnected += 1

    async def _serve(self, scope: dict[str, Any], exchange: Exchange) -> None:
        dialect = self.dialect
        incoming = Incoming.from_scope(scope, await exchange.read_body())
        headers = dialect.response_headers()
        payload = self._payload(incoming)
        if isinstance(payload, Failure):
            await _respond_failure(exchange, payload, headers)
            return
        model = dialect.model_name(incoming, payload)
        directives = parse_directives(model, incoming.headers, self.state.settings)
        self.state.arrivals.append((time.monotonic(), time.time(), model))
        faulting = self.state.should_fault(model, directives)
        await exchange.pause(directives.delay_ms / 1000)
        fault = directives.fault if faulting else None
        if fault == "stallheaders":
            await exchange.until_gone()
        if fault in HOSTILE:
            stream = dialect.wants_stream(incoming, payload)
            await play_hostile(exchange, fault, incoming, directives, stream, scope.get("path", "/"))
            return
        if faulting and directives.status is not None:
            failure = dialect.failure(directives.status, model=model, retry_after=directives.retry_after)
            await _respond_failure(exchange, failure, headers + _retry_headers(directives))
            return
        reply = build_reply(dialect.conversation(payload), model, directives)
        if fault in REFUSALS:
            await play_refusal(exchange, dialect, fault, reply, incoming, payload, headers)
            return
        if dialect.wants_stream(incoming, payload):
            plan = dialect.stream(reply, incoming, payload)
            await play_stream(exchange, plan, headers, directives, fault)
        else:
            body = dialect.completion(reply, incoming, payload)
            await play_completion(exchange, dialect, body, headers, fault, model)

    def _payload(self, incoming: Incoming) -> dict[str, Any] | Failure:
        failure = self.dialect.authenticate(incoming)
        if failure is not None:
            return failure
        payload = self.dialect.load(incoming)
        if isinstance(payload, Failure):
            return payload
        return self.dialect.validate(payload) or payload


class GeminiEndpoint:
    """Gemini's ``models/{model}:{method}`` path: embedding methods go to the embedding dialect."""

    __slots__ = ("chat", "embed")

    def __init__(self, chat: CompletionEndpoint, embed: CompletionEndpoint) -> None:
        self.chat = chat
        self.embed = embed

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        target = scope.get("path_params", {}).get("target", "")
        endpoint = self.embed if target.endswith(":batchEmbedContents") else self.chat
        await endpoint(scope, receive, send)


async def _respond_failure(exchange: Exchange, failure: Failure, headers: Headers) -> None:
    await exchange.respond(failure.status, [(b"content-type", JSON), *headers, *failure.headers], failure.body)


def _retry_headers(directives: Directives) -> Headers:
    headers = []
    if directives.retry_after is not None:
        headers.append((b"retry-after", str(directives.retry_after).encode()))
    if directives.retry_after_ms is not None:
        headers.append((b"retry-after-ms", str(directives.retry_after_ms).encode()))
    return headers


class _IntentionalResets(logging.Filter):
    """``fault-reset`` (and a shutdown during a stall) end responses unfinished on purpose; uvicorn would log
    each one as an application error."""

    _EXPECTED = ("ASGI callable returned without completing response", "ASGI callable returned without starting")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self._EXPECTED)


_KEY_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key"})


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def create_app(settings: Settings | None = None) -> Starlette:
    """A fresh emulator (own counters); ``app.state.emulator`` is its ``EmulatorState``."""
    state = EmulatorState(settings or Settings())
    uvicorn_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _IntentionalResets) for f in uvicorn_errors.filters):
        uvicorn_errors.addFilter(_IntentionalResets())

    async def stats(request: Request) -> Response:
        return _json(state.snapshot())

    async def reset(request: Request) -> Response:
        state.reset()
        state.arrivals.clear()
        return _json(state.snapshot())

    async def redirected(request: Request) -> Response:
        state.redirected += 1
        if _KEY_HEADERS & {name.lower() for name in request.headers}:
            state.redirected_with_key += 1
        return _json({"error": {"message": "followed a redirect", "type": "not_found"}}, 404)

    async def health(request: Request) -> Response:
        return _json({"status": "ok"})

    async def models(request: Request) -> Response:
        model = {"id": "emulated-model", "object": "model", "created": int(time.time()), "owned_by": "llmplex-emulator"}
        return _json({"object": "list", "data": [model]})

    async def arrivals(request: Request) -> Response:
        return _json({"arrivals": list(state.arrivals)})

    openai = CompletionEndpoint(OpenAIDialect(), state)
    text = CompletionEndpoint(TextCompletionDialect(), state)
    embeddings = CompletionEndpoint(OpenAIEmbeddingDialect(), state)
    gemini = GeminiEndpoint(CompletionEndpoint(GeminiDialect(), state), CompletionEndpoint(GeminiEmbedDialect(), state))
    # batch routes first: Gemini's batchGenerateContent would otherwise match the generic model route
    routes = [
        *openai_batch_routes(state.settings),
        *anthropic_batch_routes(state.settings),
        *gemini_batch_routes(state.settings),
        Route("/v1/chat/completions", openai, methods=["POST"]),
        Route("/chat/completions", openai, methods=["POST"]),
        Route("/v1/completions", text, methods=["POST"]),
        Route("/completions", text, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/embeddings", embeddings, methods=["POST"]),
        Route(
            "/openai/deployments/{deployment}/chat/completions",
            CompletionEndpoint(AzureDialect(), state),
            methods=["POST"],
        ),
        Route(
            "/openai/deployments/{deployment}/embeddings",
            CompletionEndpoint(AzureEmbeddingDialect(), state),
            methods=["POST"],
        ),
        Route("/v1/messages", CompletionEndpoint(AnthropicDialect(), state), methods=["POST"]),
        Route("/v1/messages/count_tokens", CompletionEndpoint(AnthropicCountTokensDialect(), state), methods=["POST"]),
        Route("/v2/chat", CompletionEndpoint(CohereDialect(), state), methods=["POST"]),
        Route("/v2/embed", CompletionEndpoint(CohereEmbedDialect(), state), methods=["POST"]),
        Route("/v1beta/models/{target}", gemini, methods=["POST"]),
        Route("/v1/models/{target}", gemini, methods=["POST"]),
        Route("/_emulator/arrivals", arrivals, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/redirected/{rest:path}", redirected, methods=["GET", "POST"]),
        Route("/health", health, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = state
    return app
