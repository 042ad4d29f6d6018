"""An uploaded batch input file: copied to disk in chunks (never whole in memory) and checked line by line.

OpenAI's input line: ``{"custom_id": str, "method": "POST", "url": "/v1/chat/completions", "body": {...}}``
with ``custom_id`` unique in the file and ``body`` holding at least ``model`` and ``messages``. A bad
line is a ``BadRequestError`` naming its (1-based) line number. Blocking I/O: run these in a thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from llmplex.exceptions import BadRequestError

__all__ = ["CHAT_URLS", "MAX_FILE_BYTES", "check_line", "iter_lines", "store_upload"]

MAX_FILE_BYTES = 200 * 1024 * 1024  # OpenAI's limit for a batch input file
CHAT_URLS = frozenset({"/v1/chat/completions", "/chat/completions"})
_CHUNK = 1024 * 1024


def _bad(number: int, message: str) -> BadRequestError:
    return BadRequestError(f"Invalid batch input, line {number}: {message}", param="file", code="invalid_request_file")


def check_line(raw: bytes, number: int, seen: set[str]) -> dict[str, Any]:
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _bad(number, "not valid JSON") from None
    if not isinstance(line, dict):
        raise _bad(number, "each line must be a JSON object")
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise _bad(number, "custom_id must be a non-empty string")
    if custom_id in seen:
        raise _bad(number, f"custom_id {custom_id!r} is used by an earlier line; each must be unique")
    seen.add(custom_id)
    if line.get("method") != "POST":
        raise _bad(number, "method must be 'POST'")
    if line.get("url") not in CHAT_URLS:
        raise _bad(number, f"url must be '/v1/chat/completions' (got {str(line.get('url'))[:80]!r})")
    body = line.get("body")
    if not isinstance(body, dict):
        raise _bad(number, "body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _bad(number, "body.model must be a non-empty string")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise _bad(number, "body.messages must be a non-empty list")
    if body.get("stream"):
        raise _bad(number, "body.stream is not supported in a batch")
    return line


def store_upload(source: IO[bytes], dest: Path, limit: int = MAX_FILE_BYTES) -> tuple[int, int]:
    """Copy ``source`` to ``dest`` checking each line; ``(bytes, lines)``. On any error ``dest`` is removed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    size = lines = 0
    seen: set[str] = set()
    tail = b""
    try:
        with open(dest, "wb") as out:
            while chunk := source.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise BadRequestError(
                        f"File too large: batch input files are limited to {limit} bytes", param="file"
                    )
                out.write(chunk)
                parts = (tail + chunk).split(b"\n")
                tail = parts.pop()
                for raw in parts:
                    lines += 1
                    if raw.strip():
                        check_line(raw, lines, seen)
            if tail.strip():
                lines += 1
                check_line(tail, lines, seen)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    if not seen:
        dest.unlink(missing_ok=True)
        raise BadRequestError("Invalid batch input: the file holds no request lines", param="file")
    return size, len(seen)


def iter_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, parsed line)`` for each non-empty line of a stored input file, streaming."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if raw.strip():
                yield number, orjson.loads(raw)
