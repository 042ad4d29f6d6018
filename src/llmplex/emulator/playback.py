"""Playing a prepared answer onto an exchange: timing (delay, ttft, chunkdelay) and faults."""

from __future__ import annotations

from llmplex.emulator.dialect import JSON, Dialect, Headers, StreamPlan
from llmplex.emulator.directives import Directives
from llmplex.emulator.exchange import Exchange

__all__ = ["play_completion", "play_stream"]

_MALFORMED_BODY = b'{"id": "malformed", "object": "chat.completion", "choices": [{"index": 0, "message": '
_CHUNKS_BEFORE_FAULT = {"midstream": 2, "truncate": 2, "reset": 2, "stall": 1}


async def play_completion(
    exchange: Exchange, dialect: Dialect, body: bytes, headers: Headers, fault: str | None, model: str
) -> None:
    """A non-streaming answer. Faults that cut a stream cut the body here (after half of it)."""
    if fault == "midstream":  # no stream to break: the same failure arrives as a 500
        failure = dialect.failure(500, model=model)
        await exchange.respond(failure.status, [(b"content-type", JSON), *headers], failure.body)
        return
    if fault == "malformed":
        body = _MALFORMED_BODY
    content_headers = [(b"content-type", JSON), *headers]
    if fault in ("truncate", "reset", "stall", "rolestall", "pingstall"):
        await exchange.start(200, [*content_headers, (b"content-length", str(len(body)).encode())])
        exchange.write(body[: len(body) // 2])
        if fault in ("stall", "rolestall", "pingstall"):
            await exchange.until_gone()
        await exchange.abort()
        return
    await exchange.respond(200, content_headers, body)


async def play_stream(
    exchange: Exchange, plan: StreamPlan, headers: Headers, directives: Directives, fault: str | None
) -> None:
    stream_headers = [(b"content-type", plan.media_type), (b"cache-control", b"no-cache"), *headers]
    await exchange.start(200, stream_headers)
    if fault == "pingstall":  # keep-alive comments forever, never an event
        while True:
            await exchange.push(b": ping\n\n")
            await exchange.pause(max(directives.chunk_delay_ms, 10) / 1000)
    exchange.write(plan.prelude)
    if fault == "rolestall":  # the opening events (OpenAI: a role-only chunk), then silence
        await exchange.until_gone()
    await exchange.pause(directives.ttft_ms / 1000)
    limit = _CHUNKS_BEFORE_FAULT.get(fault or "", len(plan.chunks))
    for index, chunk in enumerate(plan.chunks[:limit]):
        if index:
            await exchange.pause(directives.chunk_delay_ms / 1000)
        exchange.write(chunk)
        if fault == "malformed" and index == 0:
            exchange.write(plan.malformed)
    if fault == "stall":
        await exchange.until_gone()
    elif fault == "reset":
        await exchange.abort()
    elif fault == "midstream":
        await exchange.finish(plan.error_event)
    elif fault == "truncate":
        await exchange.finish()
    else:
        await exchange.finish(plan.epilogue)
