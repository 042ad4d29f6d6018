"""``Router``'s batch methods against the emulator: both ``abatch_completion`` shapes, many prompts with the
SDK batch options, the fastest-response race (losers disconnected, hedging, streams, a group given twice),
blocking twins."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from llmplex import BadRequestError, CompletionStream, ModelResponse, Router, SyncStream
from llmplex.exceptions import AllModelsFailedError, InternalServerError
from tests.fixtures_emulator import EmulatorServer

MESSAGES = [{"role": "user", "content": "batch me"}]


def entry(name: str, model: str, base: str) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": f"openai/{model}", "api_base": base, "api_key": "k"}}


def model_list(base: str) -> list[dict[str, Any]]:
    return [
        entry("fast", "fast-delay-20", base),
        entry("slow", "slow-delay-1500", base),
        entry("broken", "broken-status-500", base),
        entry("fast-stream", "fs-ttft-20", base),
        entry("slow-stream", "ss-ttft-1500", base),
    ]


@pytest.fixture
async def router(emulator: EmulatorServer) -> AsyncIterator[Router]:
    async with Router(model_list=model_list(emulator.openai_base), num_retries=0) as router:
        yield router


async def test_one_request_to_several_groups(router: Router) -> None:
    results = await router.abatch_completion(["fast", "broken"], MESSAGES, max_tokens=5)
    assert isinstance(results[0], ModelResponse) and results[0].model == "fast-delay-20"
    assert isinstance(results[1], InternalServerError)  # a failed slot holds its exception, as in LiteLLM


async def test_several_requests_to_several_groups_a_list_per_request(router: Router) -> None:
    requests = [[{"role": "user", "content": f"q{i}"}] for i in range(3)]
    results = await router.abatch_completion("fast, broken", requests)
    assert len(results) == 3 and all(len(row) == 2 for row in results)
    for i, (ok, failed) in enumerate(results):
        assert ok.choices[0].message.content == f"Echo: q{i}"
        assert isinstance(failed, InternalServerError)


@pytest.mark.parametrize(
    ("models", "messages", "param"),
    [
        (["fast", "nope"], MESSAGES, "models"),
        ([], MESSAGES, "models"),
        (["fast"], [], "messages"),
        (["fast"], [MESSAGES[0], MESSAGES], "messages"),
    ],
)
async def test_abatch_completion_bad_input(router: Router, models: Any, messages: Any, param: str) -> None:
    with pytest.raises(BadRequestError) as info:
        await router.abatch_completion(models, messages)
    assert info.value.param == param
    if "nope" in models:
        assert "fast" in info.value.message  # names the known groups


async def test_many_prompts_with_the_sdk_batch_options(
    router: Router, emulator: EmulatorServer, tmp_path: Path
) -> None:
    await emulator.areset()
    prompts = [[{"role": "user", "content": f"p{i}"}] for i in range(30)]
    checkpoint = tmp_path / "out.jsonl"
    results = await router.abatch_completion_one_model_multiple_requests(
        "fast", prompts, max_concurrency=4, checkpoint=str(checkpoint), progress=False
    )
    assert [r.choices[0].message.content for r in results] == [f"Echo: p{i}" for i in range(30)]
    assert len(checkpoint.read_text().splitlines()) == 30
    assert (await emulator.astats())["completed"] == 30
    again = await router.abatch_completion_one_model_multiple_requests("fast", prompts, checkpoint=str(checkpoint))
    assert [r.choices[0].message.content for r in again] == [f"Echo: p{i}" for i in range(30)]
    assert (await emulator.astats())["completed"] == 30  # everything came from the checkpoint


async def test_many_prompts_concurrency_is_bounded(router: Router) -> None:
    prompts = [MESSAGES] * 8
    started = time.perf_counter()
    await router.abatch_completion_one_model_multiple_requests("fast", prompts, max_concurrency=2)
    assert time.perf_counter() - started >= 4 * 0.02  # 8 calls of >= 20 ms, 2 at a time


async def test_many_prompts_failures(router: Router) -> None:
    results = await router.abatch_completion_one_model_multiple_requests("broken", [MESSAGES] * 2)
    assert all(isinstance(r, InternalServerError) for r in results)
    with pytest.raises(InternalServerError):
        await router.abatch_completion_one_model_multiple_requests("broken", [MESSAGES], return_exceptions=False)
    with pytest.raises(BadRequestError) as info:
        await router.abatch_completion_one_model_multiple_requests("fast", [MESSAGES], fallbacks="fast")
    assert info.value.param == "fallbacks"
    with pytest.raises(BadRequestError):
        await router.abatch_completion_one_model_multiple_requests("fast", [MESSAGES], max_concurrency=0)


async def test_fastest_response_wins_and_the_loser_is_disconnected(router: Router, emulator: EmulatorServer) -> None:
    await emulator.areset()
    started = time.perf_counter()
    response = await router.abatch_completion_fastest_response("slow, fast", MESSAGES)
    elapsed = time.perf_counter() - started
    assert isinstance(response, ModelResponse) and response.model == "fast-delay-20"
    assert elapsed < 1.0
    race = response.hidden_params["race"]
    assert race["winner"] == "fast" and race["cancelled"] == ["slow"]
    assert response.hidden_params["fastest_response_batch_completion"] is True
    for _ in range(100):  # the slow upstream sees the connection closed well before its 1.5 s
        if (await emulator.astats())["disconnected"] >= 1:
            break
        await asyncio.sleep(0.01)
    assert (await emulator.astats())["disconnected"] == 1


async def test_fastest_response_takes_a_failure_as_no_answer(router: Router) -> None:
    response = await router.abatch_completion_fastest_response(["broken", "fast"], MESSAGES)
    assert response.model == "fast-delay-20"
    with pytest.raises(AllModelsFailedError):
        await router.abatch_completion_fastest_response("broken, broken", MESSAGES)


async def test_the_same_group_raced_three_times(router: Router, emulator: EmulatorServer) -> None:
    await emulator.areset()
    response = await router.abatch_completion_fastest_response(["fast"] * 3, MESSAGES)
    race = response.hidden_params["race"]
    assert [a["model"] for a in race["attempts"]] == ["fast#0", "fast#1", "fast#2"]
    assert race["winner"] in {"fast#0", "fast#1", "fast#2"}
    assert (await emulator.astats())["received"] == 3  # three independent attempts


async def test_hedged_race_starts_the_backup_only_after_the_delay(router: Router, emulator: EmulatorServer) -> None:
    await emulator.areset()
    response = await router.abatch_completion_fastest_response("fast, slow", MESSAGES, hedge_delay=0.5)
    assert response.model == "fast-delay-20"
    assert (await emulator.astats())["received"] == 1  # the backup never started
    auto = await router.abatch_completion_fastest_response("fast, slow", MESSAGES, hedge_delay="auto")
    assert auto.hidden_params["race"]["hedge_samples"] >= 1
    with pytest.raises(BadRequestError):
        await router.abatch_completion_fastest_response("fast, slow", MESSAGES, hedge_delay="soon")


async def test_streamed_race_is_decided_by_the_first_token(router: Router) -> None:
    started = time.perf_counter()
    stream = await router.abatch_completion_fastest_response("slow-stream, fast-stream", MESSAGES, stream=True)
    assert isinstance(stream, CompletionStream)
    async with stream:
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Echo: batch me"
    assert time.perf_counter() - started < 1.0


async def test_unknown_group_in_a_race(router: Router) -> None:
    with pytest.raises(BadRequestError) as info:
        await router.abatch_completion_fastest_response("fast, nope", MESSAGES)
    assert "nope" in info.value.message and info.value.param == "model"


def test_blocking_twins(emulator: EmulatorServer) -> None:
    router = Router(model_list=model_list(emulator.openai_base), num_retries=0)
    try:
        pair = router.batch_completion(["fast", "broken"], MESSAGES)
        assert isinstance(pair[0], ModelResponse) and isinstance(pair[1], InternalServerError)
        many = router.batch_completion_one_model_multiple_requests("fast", [MESSAGES] * 3, max_concurrency=2)
        assert len(many) == 3 and all(isinstance(r, ModelResponse) for r in many)
        winner = router.batch_completion_fastest_response("slow, fast", MESSAGES)
        assert isinstance(winner, ModelResponse) and winner.model == "fast-delay-20"
        stream = router.batch_completion_fastest_response("slow-stream, fast-stream", MESSAGES, stream=True)
        assert isinstance(stream, SyncStream)
        with stream:
            chunks = [json.loads(c.model_dump_json()) for c in stream]
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == (
            "Echo: batch me"
        )
    finally:
        router.close()
