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

from llmplex._streaming import CompletionStream

__all__ = ["first_content"]


async def first_content(stream: CompletionStream) -> None:
    """Read until the stream has a chunk with content (text or a tool call) queued; raises like iteration.

    The stream holds the deadline: its first-token timeout counts from the request's start until
    content (``CompletionStream``; role-only chunks and ``: ping`` comments do not stop it). A stream
    that ends without content raises ``StreamError``; the router fails over on any error here,
    whatever the error's own ``retryable`` says.
    """
    await stream.peek_first_content()
