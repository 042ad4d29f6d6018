"""Adaptive hedging in the SDK (``hedge_delay="auto"``): the latency tracker and races against the real emulator."""

from __future__ import annotations

import asyncio
import time
import timeit
from typing import Any

import pytest

from llmplex import AsyncClient
from llmplex._latency import (
    DEFAULT_HEDGE_DELAY,
    MAX_AUTO_DELAY,
    MIN_AUTO_DELAY,
    LatencyTracker,
    auto_hedge_delay,
    quantile,
)
from llmplex._streaming import CompletionStream
from llmplex.exceptions import BadRequestError
from tests.batch_support import conv, wait_stats

# --- the tracker ------------------------------------------------------------------------------------


def test_quantile_interpolates_between_ranks() -> None:
    ordered = [float(v) for v in range(1, 11)]  # 1..10
    assert quantile(ordered, 0.5) == pytest.approx(5.5)
    assert quantile(ordered, 0.9) == pytest.approx(9.1)
    assert quantile(ordered, 1.0) == 10.0
    assert quantile([7.0], 0.9) == 7.0


def test_auto_delay_default_quantile_and_clamp() -> None:
    assert auto_hedge_delay([100.0] * 7) == (DEFAULT_HEDGE_DELAY, 7)  # too few samples
    delay, used = auto_hedge_delay([float(ms) for ms in range(10, 110, 10)])  # 10..100 ms
    assert used == 10 and delay == pytest.approx(0.091)
    assert auto_hedge_delay([float(ms) for ms in range(10, 110, 10)], 0.5)[0] == pytest.approx(0.055)
    assert auto_hedge_delay([0.1] * 8)[0] == MIN_AUTO_DELAY
    assert auto_hedge_delay([1e9] * 8)[0] == MAX_AUTO_DELAY


def test_tracker_is_bounded_in_samples_and_labels() -> None:
    tracker = LatencyTracker(window=4, max_labels=3)
    for ms in range(10):
        tracker.record("a", float(ms))
    assert tracker.samples("a") == [6.0, 7.0, 8.0, 9.0]  # the most recent only
    tracker.record("a", 1.0, stream=True)  # first-token latency is kept apart
    assert tracker.samples("a", stream=True) == [1.0] and len(tracker.samples("a")) == 4
    tracker.record("b", 1.0)
    tracker.record("a", 2.0)  # "a" is recent again: the stream window of "a" is the oldest now
    tracker.record("c", 1.0)
    assert len(tracker) == 3
    assert tracker.samples("a", stream=True) == [] and tracker.samples("b") == [1.0]
    tracker.forget("a")
    assert tracker.samples("a") == []
    tracker.forget()
    assert len(tracker) == 0


def test_recording_costs_about_a_microsecond() -> None:
    tracker = LatencyTracker()
    for i in range(1024):
        tracker.record(f"model-{i}", 100.0)
    # the hot path of every completion: an existing label (move to the LRU end, append to a deque)
    per_call = min(timeit.repeat(lambda: tracker.record("model-5", 100.0), number=20_000, repeat=3)) / 20_000
    assert per_call < 20e-6  # a completion's own overhead is hundreds of microseconds


# --- races ------------------------------------------------------------------------------------------


async def test_no_samples_uses_the_default_delay(client: AsyncClient, emulator: Any, up: dict[str, Any]) -> None:
    response = await client.batch_completion_models(
        models=["openai/p-delay-100", "openai/backup"], messages=conv("hi"), hedge_delay="auto", **up
    )
    race = response.hidden_params["race"]
    assert race["hedge_delay"] == DEFAULT_HEDGE_DELAY and race["hedge_samples"] == 0
    assert response.model == "p-delay-100"
    assert race["attempts"][1]["status"] == "not_started"
    assert (await emulator.astats())["received"] == 1


async def test_completions_teach_the_delay(client: AsyncClient, up: dict[str, Any]) -> None:
    model = "openai/warm-delay-100"
    for _ in range(10):  # sequential: each sample is one real ~100 ms round trip
        await client.completion(model, conv("warm"), **up)
    samples = client.latency.samples(model)
    assert len(samples) == 10 and min(samples) >= 100.0
    delay = client.latency.hedge_delay(model)
    assert 0.1 <= delay < 0.4
    response = await client.batch_completion_models(
        models=[model, "openai/backup-delay-1000"], messages=conv("hi"), hedge_delay="auto", **up
    )
    race = response.hidden_params["race"]
    assert race["hedge_samples"] == 10
    assert 0.1 <= race["hedge_delay"] < 0.4


async def test_backup_not_started_when_the_primary_answers_within_the_delay(
    client: AsyncClient, emulator: Any, up: dict[str, Any]
) -> None:
    primary = "openai/inside-delay-100"
    for _ in range(10):
        client.latency.record(primary, 400.0)  # this primary usually takes 400 ms
    response = await client.batch_completion_models(
        models=[primary, "openai/backup"], messages=conv("hi"), hedge_delay="auto", **up
    )
    race = response.hidden_params["race"]
    assert race["hedge_delay"] == pytest.approx(0.4) and race["hedge_samples"] == 10
    assert response.model == "inside-delay-100"
    await asyncio.sleep(0.1)
    assert (await emulator.astats())["received"] == 1
    assert race["attempts"][1]["status"] == "not_started"


async def test_backup_started_when_the_primary_is_slower_than_usual(
    client: AsyncClient, emulator: Any, up: dict[str, Any]
) -> None:
    primary = "openai/slow-delay-1000"
    for ms in range(60, 160, 10):  # usually 60..150 ms: p90 = 141 ms
        client.latency.record(primary, float(ms))
    t0 = time.perf_counter()
    response = await client.batch_completion_models(
        models=[primary, "openai/backup-delay-20"], messages=conv("hi"), hedge_delay="auto", **up
    )
    elapsed = time.perf_counter() - t0
    race = response.hidden_params["race"]
    assert race["hedge_delay"] == pytest.approx(0.141)
    assert response.model == "backup-delay-20"
    assert 0.141 <= elapsed < 0.6
    assert race["attempts"][1]["started_ms"] >= 141.0
    assert (await emulator.astats())["received"] == 2
    await wait_stats(emulator, "disconnected", 1)
    # the cut-off primary is remembered at the time it was cancelled (a lower bound), so its tail stays
    samples = client.latency.samples(primary)
    assert len(samples) == 11 and samples[-1] >= 141.0
    # a lower quantile hedges sooner: the p50 of the 11 samples is 110 ms
    again = await client.batch_completion_models(
        models=[primary, "openai/backup-delay-20"], messages=conv("hi"), hedge_delay="auto", hedge_quantile=0.5, **up
    )
    assert again.hidden_params["race"]["hedge_delay"] == pytest.approx(0.11)


async def test_streamed_race_learns_first_token_latency(client: AsyncClient, emulator: Any, up: dict[str, Any]) -> None:
    primary = "openai/s-ttft-50"
    stream = await client.batch_completion_models(
        models=[primary, "openai/backup"], messages=conv("hi"), hedge_delay="auto", stream=True, **up
    )
    assert isinstance(stream, CompletionStream)
    async with stream:
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert text == "Echo: hi"
    assert stream.hidden_params["race"]["hedge_delay"] == DEFAULT_HEDGE_DELAY
    assert (await emulator.astats())["received"] == 1
    first_token = client.latency.samples(primary, stream=True)
    assert len(first_token) == 1 and 50.0 <= first_token[0] < 1000.0
    assert client.latency.samples(primary) == []  # whole-completion statistics untouched


async def test_fixed_and_no_hedge_are_reported(client: AsyncClient, up: dict[str, Any]) -> None:
    fixed = await client.batch_completion_models(
        models=["openai/a", "openai/b-delay-500"], messages=conv("hi"), hedge_delay=0.25, **up
    )
    assert fixed.hidden_params["race"]["hedge_delay"] == 0.25
    assert "hedge_samples" not in fixed.hidden_params["race"]
    plain = await client.batch_completion_models(models=["openai/a", "openai/b"], messages=conv("hi"), **up)
    assert plain.hidden_params["race"]["hedge_delay"] is None


@pytest.mark.parametrize(
    "options",
    [
        {"hedge_delay": "fast"},
        {"hedge_delay": "auto", "hedge_quantile": 0},
        {"hedge_delay": "auto", "hedge_quantile": 1.5},
        {"hedge_delay": "auto", "hedge_quantile": True},
        {"hedge_delay": 0.3, "hedge_quantile": 0.9},
        {"hedge_quantile": 0.9},
    ],
)
async def test_bad_hedge_settings_fail_before_any_request(
    client: AsyncClient, emulator: Any, up: dict[str, Any], options: dict[str, Any]
) -> None:
    with pytest.raises(BadRequestError) as info:
        await client.batch_completion_models(models=["openai/a", "openai/b"], messages=conv("hi"), **options, **up)
    assert info.value.param in ("hedge_delay", "hedge_quantile")
    assert (await emulator.astats())["received"] == 0
