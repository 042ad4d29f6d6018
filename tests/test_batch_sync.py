"""The blocking facade of the batch shapes: plain scripts, other threads, inside a running loop, Ctrl-C."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import llmplex
from llmplex import Client
from llmplex._sync import SyncStream
from llmplex.exceptions import AllModelsFailedError, BadRequestError, RateLimitError
from llmplex.types import ModelResponse
from tests.batch_support import conv, prompts


@pytest.fixture
def client(emulator: Any) -> Iterator[Client]:
    emulator.reset()
    with Client(num_retries=0) as c:
        yield c


def wait_stats(emulator: Any, key: str, value: int, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while emulator.stats()[key] < value:
        assert time.monotonic() < deadline, f"{key} never reached {value}: {emulator.stats()}"
        time.sleep(0.01)


def test_sync_batch_from_a_plain_script(client: Client, up: dict[str, Any]) -> None:
    results = client.batch_completion("openai/m", prompts(5), max_workers=2, **up)
    assert [r.choices[0].message.content for r in results] == [f"Echo: p{i}" for i in range(5)]


def test_sync_race_from_another_thread(client: Client, up: dict[str, Any]) -> None:
    box: list[Any] = []

    def work() -> None:
        box.append(
            client.batch_completion_models(
                models=["openai/a-delay-1000", "openai/b-delay-10"], messages=conv("x"), **up
            )
        )

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert box[0].model == "b-delay-10"


async def test_sync_batch_inside_a_running_loop(client: Client, up: dict[str, Any]) -> None:
    # e.g. Jupyter: the caller's loop is blocked while the client's own loop does the work
    results = client.batch_completion("openai/m", prompts(3), **up)
    assert all(isinstance(r, ModelResponse) for r in results)
    response = client.batch_completion_models(models=["openai/a", "openai/b-delay-500"], messages=conv("x"), **up)
    assert response.model == "a"


def test_sync_iter_batch(client: Client, up: dict[str, Any]) -> None:
    seen = dict(client.iter_batch_completion("openai/m", prompts(4), **up))
    assert sorted(seen) == [0, 1, 2, 3]
    assert seen[2].choices[0].message.content == "Echo: p2"


def test_sync_stream_race_returns_a_blocking_stream(client: Client, emulator: Any, up: dict[str, Any]) -> None:
    stream = client.batch_completion_models(
        models=["openai/slow-ttft-1500", "openai/fast-ttft-20"], messages=conv("hi you"), stream=True, **up
    )
    assert isinstance(stream, SyncStream)
    with stream:
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Echo: hi you"
    wait_stats(emulator, "disconnected", 1)


def test_sync_all_responses_and_all_failed(client: Client, up: dict[str, Any]) -> None:
    ok = client.batch_completion_models_all_responses(
        models=["openai/a", "openai/b-status-500"], messages=conv("x"), **up
    )
    assert [r.model for r in ok] == ["a"]
    with pytest.raises(AllModelsFailedError) as info:
        client.batch_completion_models_all_responses(models=["openai/a-status-429"], messages=conv("x"), **up)
    assert isinstance(info.value.exceptions[0], RateLimitError)


def test_sync_bad_input_raises_in_the_caller(client: Client, up: dict[str, Any]) -> None:
    with pytest.raises(BadRequestError):
        client.batch_completion("openai/m", conv("not a list of lists"), **up)
    with pytest.raises(BadRequestError):
        client.iter_batch_completion("openai/m", prompts(2), max_workers=-1, **up).__next__()


def test_ctrl_c_cancels_and_closes_every_request(client: Client, emulator: Any, up: dict[str, Any]) -> None:
    main = threading.main_thread().ident
    assert main == threading.get_ident() and main is not None

    def interrupt_when_busy() -> None:
        wait_stats(emulator, "in_flight", 4)
        signal.pthread_kill(main, signal.SIGINT)  # what Ctrl-C does

    trigger = threading.Thread(target=interrupt_when_busy)
    trigger.start()
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        client.batch_completion("openai/m-delay-5000", prompts(10), max_concurrency=4, **up)
    trigger.join(timeout=5)
    assert time.perf_counter() - t0 < 3
    wait_stats(emulator, "disconnected", 4)
    assert emulator.stats()["received"] == 4


def test_module_functions(emulator: Any, up: dict[str, Any], tmp_path: Path) -> None:
    emulator.reset()
    path = tmp_path / "c.jsonl"
    results = llmplex.batch_completion("openai/m", prompts(3), checkpoint=str(path), num_retries=0, **up)
    assert [r.choices[0].message.content for r in results] == ["Echo: p0", "Echo: p1", "Echo: p2"]
    again = llmplex.batch_completion("openai/m", prompts(3), checkpoint=str(path), **up)
    assert emulator.stats()["received"] == 3
    assert again[1].choices[0].message.content == "Echo: p1"
    winner = llmplex.batch_completion_models(models=["openai/x-delay-800", "openai/y"], messages=conv("z"), **up)
    assert winner.model == "y"


async def test_async_module_functions(emulator: Any, up: dict[str, Any]) -> None:
    await emulator.areset()
    results = await llmplex.abatch_completion("openai/m", prompts(2), **up)
    assert len(results) == 2
    pairs = [pair async for pair in llmplex.aiter_batch_completion("openai/m", prompts(2), **up)]
    assert sorted(i for i, _ in pairs) == [0, 1]
    winner = await llmplex.abatch_completion_models(models=["openai/x-delay-800", "openai/y"], messages=conv("z"), **up)
    assert winner.model == "y"
    every = await llmplex.abatch_completion_models_all_responses(
        models=["openai/x", "openai/y"], messages=conv("z"), **up
    )
    assert [r.model for r in every] == ["x", "y"]
