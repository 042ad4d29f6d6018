"""SSE decoding and encoding: plain values in, plain values out."""

from __future__ import annotations

import time

import pytest

from llmplex._sse import SSEDecoder, SSEEvent, encode_data, encode_done
from llmplex.exceptions import StreamError

STREAM = (
    b": keep-alive comment\n"
    b"event: message_start\n"
    b'data: {"type": "message_start"}\n'
    b"\n"
    b"id: 7\n"
    b"data: first line\n"
    b"data: second line\n"
    b"\n"
    b"data:no-space\n"
    b"\n"
    b"data: [DONE]\n"
    b"\n"
)
EXPECTED = [
    SSEEvent("message_start", '{"type": "message_start"}', None),
    SSEEvent(None, "first line\nsecond line", "7"),
    SSEEvent(None, "no-space", "7"),
    SSEEvent(None, "[DONE]", "7"),
]


def decode_all(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.flush())
    return events


def test_whole_stream() -> None:
    assert decode_all([STREAM]) == EXPECTED


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"], ids=["crlf", "cr"])
def test_other_line_endings(newline: bytes) -> None:
    assert decode_all([STREAM.replace(b"\n", newline)]) == EXPECTED


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_split_at_every_byte_position(newline: bytes) -> None:
    stream = STREAM.replace(b"\n", newline)
    for cut in range(1, len(stream)):
        assert decode_all([stream[:cut], stream[cut:]]) == EXPECTED, f"split at {cut}"


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_one_byte_at_a_time(newline: bytes) -> None:
    stream = STREAM.replace(b"\n", newline)
    assert decode_all([stream[i : i + 1] for i in range(len(stream))]) == EXPECTED


def test_events_come_out_as_soon_as_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.pending
    assert decoder.feed(b"\n") == [SSEEvent(None, "a")]
    assert not decoder.pending


def test_multibyte_utf8_split_across_chunks() -> None:
    raw = "data: héllo ✓\n\n".encode()
    for cut in range(1, len(raw)):
        assert decode_all([raw[:cut], raw[cut:]]) == [SSEEvent(None, "héllo ✓")]


def test_no_line_length_limit() -> None:
    payload = "x" * (4 * 1024 * 1024)
    raw = b"data: " + payload.encode() + b"\n\n"
    chunks = [raw[i : i + 65536] for i in range(0, len(raw), 65536)]
    events = decode_all(chunks)
    assert len(events) == 1
    assert events[0].data == payload


def test_comments_and_unknown_fields_are_ignored() -> None:
    assert decode_all([b": ping\n\n: ping\nretry: 100\nfoo: bar\n\n"]) == []


def test_flush_emits_last_event_without_blank_line() -> None:
    assert decode_all([b"data: tail"]) == [SSEEvent(None, "tail")]
    assert decode_all([b"data: tail\n"]) == [SSEEvent(None, "tail")]


def test_empty_data_line_is_an_event() -> None:
    assert decode_all([b"data:\n\n"]) == [SSEEvent(None, "")]


def test_event_field_without_data() -> None:
    assert decode_all([b"event: ping\n\n"]) == [SSEEvent("ping", "")]


def test_json() -> None:
    assert SSEEvent(None, '{"a": [1, 2]}').json() == {"a": [1, 2]}


def test_encode_round_trip() -> None:
    raw = encode_data({"id": "x", "choices": []}) + encode_data(b'{"raw":true}') + encode_done()
    assert raw.count(b"event:") == 0
    events = decode_all([raw])
    assert [e.data for e in events] == ['{"id":"x","choices":[]}', '{"raw":true}', "[DONE]"]
    assert encode_done() == b"data: [DONE]\n\n"


def test_an_event_over_the_cap_is_a_stream_error() -> None:
    decoder = SSEDecoder(max_event_bytes=64 * 1024)
    decoder.feed(b"data: " + b"x" * 60_000)
    with pytest.raises(StreamError, match="larger than 65536 bytes"):
        decoder.feed(b"x" * 10_000)  # the line never ended
    many = SSEDecoder(max_event_bytes=64 * 1024)
    with pytest.raises(StreamError):  # data lines that never end their event count too
        for _ in range(100):
            many.feed(b"data: " + b"y" * 1000 + b"\n")


def test_a_long_line_in_small_reads_is_decoded_in_linear_time() -> None:
    """4 MiB in 1 KiB reads: rebuilding and rescanning the buffer per read copied ~8 GB (seconds); one scan
    of each new byte takes milliseconds."""
    decoder = SSEDecoder()
    line = b"data: " + b"x" * (4 * 1024 * 1024)
    started = time.perf_counter()
    for i in range(0, len(line), 1024):
        assert decoder.feed(line[i : i + 1024]) == []
    events = decoder.feed(b"\n\n")
    assert time.perf_counter() - started < 1.0
    assert len(events) == 1 and len(events[0].data) == 4 * 1024 * 1024


@pytest.mark.parametrize(
    "chunks",
    [
        [b"data: a\r", b"\ndata: b\r\n\r\n"],  # a \r\n split across reads is one line end
        [b"data: a\r\ndata: b\r", b"\r"],  # lone \r line ends
        [b"data: a\r", b"\n", b"data: b\r\n", b"\r\n"],
    ],
)
def test_line_ends_split_across_reads(chunks: list[bytes]) -> None:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    assert events == [SSEEvent(None, "a\nb")]
