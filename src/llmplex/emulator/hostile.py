"""Hostile upstreams, for testing that a client survives them: answers no real provider sends.

- ``redirect``: 307 to ``/_emulator/redirected/...`` on the same server, which counts what arrives there
  (``redirected`` in the stats) and whether it carried a key header.
- ``endlessline``: a 200 body that never ends a line (``data: xxxx...`` when streaming), sent as fast as
  the client reads.
- ``gzipbomb``: ``content-encoding: gzip``, ``mib-<n>`` MiB (default 1024) once decompressed, 1/1000 of
  that on the wire; a stream's content is one line with no end.
- ``hugebody``: a ``mib-<n>`` MiB (default 300) JSON body without ``content-length``; streaming: OpenAI
  content chunks without end.
- ``echokey``: a 401 whose message repeats the request's headers (its key) and the start of its body.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from functools import lru_cache

import orjson

from llmplex.emulator.dialect import JSON, SSE, Incoming
from llmplex.emulator.directives import Directives
from llmplex.emulator.exchange import Exchange

__all__ = ["HOSTILE", "play_hostile"]

HOSTILE = frozenset({"redirect", "endlessline", "gzipbomb", "hugebody", "echokey"})
_BLOCK = 64 * 1024
_MIB = 1024 * 1024


async def play_hostile(
    exchange: Exchange, fault: str, incoming: Incoming, directives: Directives, stream: bool, path: str
) -> None:
    media = SSE if stream else JSON
    if fault == "redirect":
        await exchange.respond(307, [(b"location", b"/_emulator/redirected" + path.encode("latin-1"))], b"")
    elif fault == "echokey":
        echoed = {"headers": incoming.headers, "body": incoming.body[:200].decode("utf-8", errors="replace")}
        message = f"Incorrect API key provided. You sent: {orjson.dumps(echoed).decode()}"
        body = orjson.dumps({"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}})
        await exchange.respond(401, [(b"content-type", JSON)], body)
    elif fault == "gzipbomb":
        await exchange.start(200, [(b"content-type", media), (b"content-encoding", b"gzip")])
        blocks = await asyncio.to_thread(_bomb, max(directives.size_mib or 1024, 1), stream)
        for block in blocks:
            await exchange.push(block)
        await exchange.finish()
    elif fault == "endlessline":
        await exchange.start(200, [(b"content-type", media)])
        await exchange.push(b"data: " if stream else b'{"id": "')
        block = b"x" * _BLOCK
        while True:
            await exchange.push(block)
    else:  # hugebody
        await exchange.start(200, [(b"content-type", media)])
        if stream:
            chunk = _content_chunk()
            while True:
                await exchange.push(chunk * 16)
        await exchange.push(b'{"id": "huge", "object": "chat.completion", "padding": "')
        block = b"x" * _BLOCK
        for _ in range((directives.size_mib or 300) * _MIB // _BLOCK):
            await exchange.push(block)
        await exchange.finish(b'", "choices": []}')


@lru_cache(maxsize=4)
def _bomb(mib: int, stream: bool) -> tuple[bytes, ...]:
    """``mib`` MiB of ``0`` gzip-compressed, in 64 KiB wire blocks; made once per size, in a thread.

    After the first MiB the compressor's window holds only zeros, so each further MiB, sync-flushed,
    compresses to the same bytes: the deflate stream is one block repeated, not 1 GiB compressed.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate; the gzip framing is written here
    zeros = b"0" * _MIB
    prefix = b"data: " if stream else b'{"id": "'
    head = compressor.compress(prefix) + compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    tail = compressor.flush()
    crc = zlib.crc32(prefix)
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    size = (len(prefix) + mib * _MIB) & 0xFFFFFFFF
    gzip_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    wire = gzip_header + head + block * (mib - 1) + tail + struct.pack("<II", crc, size)
    return tuple(wire[i : i + _BLOCK] for i in range(0, len(wire), _BLOCK))


def _content_chunk() -> bytes:
    chunk = {
        "id": "chatcmpl-hostile",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "hostile",
        "choices": [{"index": 0, "delta": {"content": "more "}, "finish_reason": None}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"
