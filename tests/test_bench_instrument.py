"""The benchmark's slow-stream instrument (``bench.sse_client``) against the emulator: it must count every
event, stamp them as they arrive, and report failures as failures, or the numbers in BENCHMARKS.md mean nothing."""

from __future__ import annotations

import itertools
from typing import Any

import aiohttp
import orjson
import pytest
from bench.httpload import slow_streams
from bench.sse_client import SSEClient

from tests.fixtures_emulator import EmulatorServer

AUTH = {"Authorization": "Bearer sk-test"}


def _body(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "count these words"}], "stream": True}


async def _data_events(url: str, body: dict[str, Any]) -> int:
    """The same stream read by aiohttp: how many ``data:`` events it holds."""
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=AUTH) as resp:
        return (await resp.read()).count(b"data:")


async def test_counts_every_event_and_stamps_it_on_arrival(emulator: EmulatorServer) -> None:
    url = emulator.openai_base + "/chat/completions"
    body = _body("instrument-chunks-6-chunkdelay-30")
    result = await SSEClient(url, orjson.dumps(body), {**AUTH, "Content-Type": "application/json"}).stream()
    assert result.status == 200
    assert result.done
    assert len(result.arrivals) == await _data_events(url, body)
    # 6 content chunks with 30 ms pauses between them: stamped as they arrive, the events span ~150 ms (a
    # timer never fires early; the slack is for a first event delivered late on a busy machine)
    assert result.arrivals[-1] - result.arrivals[0] >= 0.12, result.arrivals
    assert max(b - a for a, b in itertools.pairwise(result.arrivals)) >= 0.02
    assert result.ttft >= 0


async def test_an_error_status_is_not_a_completed_stream(emulator: EmulatorServer) -> None:
    url = emulator.openai_base + "/chat/completions"
    body = orjson.dumps(_body("instrument-status-503"))
    result = await SSEClient(url, body, AUTH).stream()
    assert result.status == 503
    assert not result.done


async def test_a_connection_cut_mid_stream_raises(emulator: EmulatorServer) -> None:
    url = emulator.openai_base + "/chat/completions"
    body = orjson.dumps(_body("instrument-chunks-5-fault-reset"))
    with pytest.raises(ConnectionError):
        await SSEClient(url, body, AUTH).stream()


async def test_slow_streams_reports_gaps_and_failures(emulator: EmulatorServer) -> None:
    url = emulator.openai_base + "/chat/completions"
    ok = await slow_streams(url, _body("instrument-chunks-4-chunkdelay-40"), AUTH, streams=20, timeout=10, ramp=0.1)
    assert (ok["completed"], ok["errors"], ok["unfinished"]) == (20, 0, 0)
    assert 30 <= ok["max_gap_ms"] < 1000  # 40 ms pauses, less the slack a busy machine may take off one
    midstream = _body("instrument-chunks-4-fault-midstream")
    broken = await slow_streams(url, midstream, AUTH, streams=5, timeout=10, ramp=0.1)
    assert (broken["completed"], broken["errors"]) == (0, 5)
