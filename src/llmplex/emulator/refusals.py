"""Faults for testing a router's failover: a stream that ends before any content, and refusals that a
client should recognise as a context-window or content-policy error (each in the dialect's own error shape).

- ``fault-roleend``: the stream's opening events (OpenAI: a role-only chunk), then the body ends, with
  neither content nor the terminal event;
- ``fault-contextwindow``: 400 whose message names the context length (``context_length_exceeded``);
- ``fault-contentpolicy``: 400 whose message names the content policy (``content_policy_violation``).
"""

from __future__ import annotations

from typing import Any

from llmplex.emulator.dialect import JSON, Dialect, Headers, Incoming
from llmplex.emulator.exchange import Exchange

__all__ = ["REFUSALS", "play_refusal"]

REFUSALS = frozenset({"roleend", "contextwindow", "contentpolicy"})

_MESSAGES = {
    "contextwindow": "This model's maximum context length is 128 tokens. However, your messages resulted in more "
    "tokens. Please reduce the length of the messages. (context_length_exceeded)",
    "contentpolicy": "Your request was rejected as a result of our safety system: it may contain content that is "
    "not allowed by our content policy. (content_policy_violation)",
}


async def play_refusal(
    exchange: Exchange,
    dialect: Dialect,
    fault: str,
    reply: Any,
    incoming: Incoming,
    payload: dict[str, Any],
    headers: Headers,
) -> None:
    if fault == "roleend" and dialect.wants_stream(incoming, payload):
        plan = dialect.stream(reply, incoming, payload)
        await exchange.start(200, [(b"content-type", plan.media_type), (b"cache-control", b"no-cache"), *headers])
        await exchange.finish(plan.prelude)
        return
    failure = dialect.failure(400, _MESSAGES.get(fault, _MESSAGES["contextwindow"]))
    await exchange.respond(failure.status, [(b"content-type", JSON), *headers, *failure.headers], failure.body)
