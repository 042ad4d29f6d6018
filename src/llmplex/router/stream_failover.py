"""Failover before the first token: a routed stream is handed to the caller only once it has content.

``RoutingCore._call_group`` calls ``first_content`` on every stream it opens, inside its retry loop:
a stream that fails, stalls past its first-token timeout (``stream_first_token_timeout`` /
LiteLLM's ``stream_timeout``; role-only chunks do not count as content) or ends before any content
raises here, its connection closed, and the router tries the next deployment or fallback group as
for any failed call. Nothing has reached the caller yet, so the caller sees one clean stream. The
chunks read meanwhile stay queued in the stream (nothing else is buffered). Once content has been
handed over a failure is the caller's to see: the stream raises (the proxy sends an error event).
"""

from __future__ import annotations

import asyncio

from llmplex._streaming import CompletionStream
from llmplex.exceptions import Timeout

__all__ = ["first_content"]


async def first_content(stream: CompletionStream, timeout: float) -> None:
    """Read until the stream has a chunk with content (text or a tool call) queued; raises like iteration.

    ``timeout``: seconds left of the call's first-token timeout. The stream enforces it too, but a
    role-only chunk must not stop that clock, whatever the stream counts as its first chunk.
    A stream that ends without content raises ``StreamError``; the router fails over on any error
    here, whatever the error's own ``retryable`` says.
    """
    try:
        async with asyncio.timeout(max(timeout, 0.0)):
            await stream.peek_first_content()
    except TimeoutError:
        stream.close()
        raise Timeout(
            f"stream first-token timeout exceeded: no content within {timeout:g}s",
            provider=stream.provider,
            model=stream.model,
        ) from None
