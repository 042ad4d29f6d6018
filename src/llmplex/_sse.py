"""Server-sent events: a decoder (bytes -> events) and an encoder (payload -> bytes). No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["DONE", "SSEDecoder", "SSEEvent", "encode_data", "encode_done"]


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str
    id: str | None = None

    def json(self) -> Any:
        return orjson.loads(self.data)


class SSEDecoder:
    """Incremental decoder: feed byte chunks, get complete events.

    Handles events split across chunks, ``\\n``/``\\r\\n``/``\\r`` line ends, comments and
    multi-line data. Lines are never length-limited (a large tool call fits in one line).
    """

    __slots__ = ("_buffer", "_data", "_event", "_id")

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            # a trailing lone \r may be the first half of \r\n: keep it for the next chunk
            keep_cr = buffer.endswith(b"\r")
            body = buffer[:-1] if keep_cr else buffer
            buffer = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + (b"\r" if keep_cr else b"")
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = buffer[start:end]
            start = end + 1
            event = self._line(line)
            if event is not None:
                events.append(event)
        self._buffer = buffer[start:]
        return events

    def flush(self) -> list[SSEEvent]:
        """End of input: a last event without its blank line still counts."""
        events = self.feed(b"\n") if self._buffer else []
        event = self._line(b"")
        if event is not None:
            events.append(event)
        return events

    @property
    def pending(self) -> bool:
        """Bytes or fields received that do not yet form a complete event."""
        return bool(self._buffer.strip() or self._data)

    def _line(self, raw: bytes) -> SSEEvent | None:
        if not raw:
            if not self._data and self._event is None:
                return None
            event = SSEEvent(self._event, "\n".join(self._data), self._id)
            self._event, self._data = None, []
            return event
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None


DONE = b"data: [DONE]\n\n"


def encode_data(payload: bytes | dict[str, Any]) -> bytes:
    """One ``data:`` event (never an ``event:`` line: older openai SDKs drop named events)."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return b"data: " + body + b"\n\n"


def encode_done() -> bytes:
    return DONE
