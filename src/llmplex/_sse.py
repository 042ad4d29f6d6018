"""Server-sent events: a decoder (bytes -> events) and an encoder (payload -> bytes). No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from llmplex.exceptions import StreamError

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "DONE", "SSEDecoder", "SSEEvent", "encode_data", "encode_done"]

# A pending event above this size is an error: a few MB holds the largest real tool call by far.
DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024


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
    multi-line data. Each byte is scanned once: a line still incomplete is kept as a list of pieces,
    joined when its end arrives. A pending event (its unfinished line plus its data lines so far)
    larger than ``max_event_bytes`` raises ``StreamError``: an upstream that never ends a line cannot
    grow memory without bound.
    """

    __slots__ = ("_data", "_data_size", "_event", "_id", "_max", "_partial", "_partial_size", "_skip_lf")

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._partial: list[bytes] = []  # pieces of the line not yet ended
        self._partial_size = 0
        self._skip_lf = False  # the last chunk ended with \r: a \n opening the next one ends no line
        self._event: str | None = None
        self._data: list[str] = []
        self._data_size = 0
        self._id: str | None = None
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:  # only this chunk's bytes are rewritten, never what is pending
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = chunk.find(b"\n")
        if end < 0:
            if chunk:
                self._keep(chunk)
            return []
        events: list[SSEEvent] = []
        if self._partial:
            self._partial.append(chunk[:end])
            line = b"".join(self._partial)
            self._partial = []
            self._partial_size = 0
        else:
            line = chunk[:end]
        while True:
            if line:
                self._line(line)
            elif self._data or self._event is not None:
                events.append(SSEEvent(self._event, "\n".join(self._data), self._id))
                self._event = None
                self._data = []
                self._data_size = 0
            start = end + 1
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            line = chunk[start:end]
        if start < len(chunk):
            self._keep(chunk[start:])
        return events

    def _keep(self, piece: bytes) -> None:
        self._partial.append(piece)
        self._partial_size += len(piece)
        if self._partial_size + self._data_size > self._max:
            self._overflow()

    def _overflow(self) -> None:
        size = self._partial_size + self._data_size
        self._partial, self._data = [], []
        self._partial_size = self._data_size = 0
        raise StreamError(f"stream event larger than {self._max} bytes (at least {size} bytes without an event end)")

    def flush(self) -> list[SSEEvent]:
        """End of input: a last event without its blank line still counts."""
        events = self.feed(b"\n") if self._partial else []
        if self._data or self._event is not None:
            events.append(SSEEvent(self._event, "\n".join(self._data), self._id))
            self._event, self._data, self._data_size = None, [], 0
        return events

    @property
    def pending_size(self) -> int:
        """Bytes held for the event not yet complete."""
        return self._partial_size + self._data_size

    @property
    def pending(self) -> bool:
        """Bytes or fields received that do not yet form a complete event."""
        return bool(any(piece.strip() for piece in self._partial) or self._data)

    def _line(self, raw: bytes) -> None:
        if raw.startswith(b"data: "):  # nearly every line: skip the general parse
            value = raw[6:].decode("utf-8", errors="replace")
        else:
            line = raw.decode("utf-8", errors="replace")
            if line.startswith(":"):
                return
            name, sep, value = line.partition(":")
            if sep and value.startswith(" "):
                value = value[1:]
            if name == "event":
                self._event = value
                return
            if name == "id":
                self._id = value
                return
            if name != "data":
                return
        self._data.append(value)
        self._data_size += len(raw)
        if self._data_size > self._max:
            self._overflow()


DONE = b"data: [DONE]\n\n"


def encode_data(payload: bytes | dict[str, Any]) -> bytes:
    """One ``data:`` event (never an ``event:`` line: older openai SDKs drop named events)."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return b"data: " + body + b"\n\n"


def encode_done() -> bytes:
    return DONE
