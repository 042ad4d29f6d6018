"""One prompt, many models against the real emulator: the race, hedging, streams, all responses."""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import pytest

from llmplex import AsyncClient
from llmplex._streaming import CompletionStream
from llmplex.exceptions import (
    AllModelsFailedError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
    ServiceUnavailableError,
    Timeout,
)
from tests.batch_support import conv, wait_stats

# --- batch_completion_models: the race -------------------------------------------------------------


async def test_race_returns_the_fast_model_and_disconnects_the_slow(
    client: AsyncClient, emulator: Any, up: dict[str, Any]
) -> None:
    t0 = time.perf_counter()
    response = await client.batch_completion_models(
        models=["openai/slow-delay-1500", "openai/fast-delay-50"], messages=conv("hi"), **up
    )
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5
    assert response.model == "fast-delay-50"
    race = response.hidden_params["race"]
    assert race["winner"] == "openai/fast-delay-50" and race["winner_index"] == 1
    assert race["cancelled"] == ["openai/slow-delay-1500"]
    assert [a["status"] for a in race["attempts"]] == ["cancelled", "won"]
    assert response.hidden_params["model_label"] == "openai/fast-delay-50"
    assert await wait_stats(emulator, "disconnected", 1, timeout=1.0) < 0.1


async def test_race_fast_error_never_wins(client: AsyncClient, up: dict[str, Any]) -> None:
    response = await client.batch_completion_models(
        models=["openai/bad-status-500", "openai/good-delay-100"], messages=conv("hi"), **up
    )
    assert response.model == "good-delay-100"
    first = response.hidden_params["race"]["attempts"][0]
    assert first["status"] == "failed" and "500" in first["error"]


async def test_the_same_model_raced_twice_is_two_attempts(
    client: AsyncClient, emulator: Any, up: dict[str, Any]
) -> None:
    await emulator.areset()
    response = await client.batch_completion_models(models=["openai/twin-delay-20"] * 2, messages=conv("hi"), **up)
    race = response.hidden_params["race"]
    assert [a["model"] for a in race["attempts"]] == ["openai/twin-delay-20#0", "openai/twin-delay-20#1"]
    assert (await emulator.astats())["received"] == 2


async def test_race_all_failed_is_typed(client: AsyncClient, up: dict[str, Any]) -> None:
    models = ["openai/a-status-429", "openai/b-status-503"]
    with pytest.raises(AllModelsFailedError) as info:
        await client.batch_completion_models(models=models, messages=conv("hi"), **up)
    assert [type(e) for e in info.value.exceptions] == [RateLimitError, ServiceUnavailableError]
    rate_limited: list[BaseException] = []
    try:
        await client.batch_completion_models(models=models, messages=conv("hi"), **up)
    except* RateLimitError as group:
        rate_limited.extend(group.exceptions)
    except* ServiceUnavailableError:
        pass
    assert len(rate_limited) == 1 and rate_limited[0].model == "a-status-429"  # type: ignore[attr-defined]


async def test_hedge_backup_not_sent_when_primary_answers_in_time(
    client: AsyncClient, emulator: Any, up: dict[str, Any]
) -> None:
    response = await client.batch_completion_models(
        models=["openai/primary-delay-50", "openai/backup"], messages=conv("hi"), hedge_delay=0.5, **up
    )
    assert response.model == "primary-delay-50"
    await asyncio.sleep(0.1)
    assert (await emulator.astats())["received"] == 1
    assert response.hidden_params["race"]["attempts"][1]["status"] == "not_started"


async def test_hedge_backup_sent_after_the_delay(client: AsyncClient, emulator: Any, up: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    response = await client.batch_completion_models(
        models=["openai/primary-delay-1500", "openai/backup-delay-20"], messages=conv("hi"), hedge_delay=0.15, **up
    )
    assert 0.15 <= time.perf_counter() - t0 < 0.6
    assert response.model == "backup-delay-20"
    assert (await emulator.astats())["received"] == 2
    await wait_stats(emulator, "disconnected", 1, timeout=1.0)


async def test_hedge_failure_starts_backup_at_once(client: AsyncClient, up: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    response = await client.batch_completion_models(
        models=["openai/primary-status-500", "openai/backup"], messages=conv("hi"), hedge_delay=2.0, **up
    )
    assert time.perf_counter() - t0 < 0.5
    assert response.model == "backup"


async def test_race_timeout_bounds_the_whole_race(client: AsyncClient, emulator: Any, up: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    with pytest.raises(Timeout):
        await client.batch_completion_models(
            models=["openai/a-delay-3000", "openai/b-delay-3000"], messages=conv("hi"), timeout=0.2, **up
        )
    assert time.perf_counter() - t0 < 0.6
    await wait_stats(emulator, "disconnected", 2, timeout=1.0)


async def test_stream_race_on_first_token_returns_winner_with_first_chunk(
    client: AsyncClient, emulator: Any, up: dict[str, Any]
) -> None:
    t0 = time.perf_counter()
    stream = await client.batch_completion_models(
        models=["openai/slow-ttft-1500", "openai/fast-ttft-30"], messages=conv("hello there"), stream=True, **up
    )
    assert isinstance(stream, CompletionStream)
    assert time.perf_counter() - t0 < 0.5
    assert stream.hidden_params["race"]["winner"] == "openai/fast-ttft-30"
    text = ""
    async with stream:
        async for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
    assert text == "Echo: hello there"
    await wait_stats(emulator, "disconnected", 1, timeout=1.0)


async def test_stream_race_skips_attempts_that_fail_before_their_first_token(
    client: AsyncClient, up: dict[str, Any]
) -> None:
    # 'a' opens its stream but times out waiting for the first token; 'b' fails at once; 'c' wins
    stream = await client.batch_completion_models(
        models=[
            {"model": "openai/a-ttft-3000", "stream_first_token_timeout": 0.1, "stream_idle_timeout": 0.1},
            "openai/b-status-500",
            "openai/c-ttft-300",
        ],
        messages=conv("x"),
        stream=True,
        **up,
    )
    assert isinstance(stream, CompletionStream)
    async with stream:
        chunks = [c async for c in stream]
    race = stream.hidden_params["race"]
    assert race["winner"] == "openai/c-ttft-300"
    assert [a["status"] for a in race["attempts"]] == ["failed", "failed", "won"]
    assert "timeout" in race["attempts"][0]["error"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: x"


async def test_deployments_form_is_not_mutated_and_settings_do_not_leak(
    client: AsyncClient, emulator: Any, up: dict[str, Any]
) -> None:
    deployments = [
        {"model": "openai/slow-delay-1000", "api_base": up["api_base"], "api_key": "test", "temperature": 0.1},
        {"model": "openai/fast-delay-20", "api_base": up["api_base"], "api_key": "test"},
    ]
    before = copy.deepcopy(deployments)
    response = await client.batch_completion_models(deployments=deployments, messages=conv("hi"), model_list=[])
    assert response.model == "fast-delay-20"
    assert deployments == before
    # the second deployment has no key of its own: it must not borrow the first one's
    no_key = [deployments[0], {"model": "openai/fast", "api_base": up["api_base"]}]
    with pytest.raises(AuthenticationError):
        await client.batch_completion_models(deployments=no_key, messages=conv("hi"))
    assert deployments == before


async def test_models_as_dicts_with_their_own_settings(client: AsyncClient, up: dict[str, Any]) -> None:
    response = await client.batch_completion_models(
        models=[{"model": "openai/a", "api_key": "bad-key", "api_base": up["api_base"]}, "openai/b-delay-50"],
        messages=conv("hi"),
        **up,
    )
    assert response.model == "b-delay-50"  # 'a' used its own bad key and failed
    assert "401" in response.hidden_params["race"]["attempts"][0]["error"]


async def test_race_same_model_on_two_bases_gets_distinct_labels(client: AsyncClient, emulator: Any) -> None:
    other = emulator.url + "/v1/"  # same server, another spelling: a second deployment
    response = await client.batch_completion_models(
        models=[
            {"model": "openai/m-delay-1000", "api_base": emulator.openai_base, "api_key": "test"},
            {"model": "openai/m-delay-1000", "api_base": other, "api_key": "test"},
        ],
        messages=conv("hi"),
        timeout=5,
    )
    labels = [a["model"] for a in response.hidden_params["race"]["attempts"]]
    assert labels == [f"openai/m-delay-1000@{emulator.openai_base}", f"openai/m-delay-1000@{other}"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"models": []},
        {"models": ["openai/a", ""]},
        {"models": [{"api_base": "x"}]},
        {"models": ["openai/a"], "deployments": [{"model": "openai/b"}]},
        {"models": ["openai/a"], "fastest_response": True},
        {"models": [{"model": "openai/a", "weird": 1}]},
        {"models": ["openai/a"], "hedge_delay": -1},
        {"models": ["openai/a"], "model": "openai/b"},
    ],
)
async def test_race_bad_input_fails_before_any_request(
    client: AsyncClient, emulator: Any, up: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(BadRequestError):
        await client.batch_completion_models(messages=conv("hi"), **kwargs, **up)
    assert (await emulator.astats())["received"] == 0


async def test_race_caller_cancel_closes_every_request(client: AsyncClient, emulator: Any, up: dict[str, Any]) -> None:
    task = asyncio.create_task(
        client.batch_completion_models(models=["openai/a-delay-3000", "openai/b-delay-3000"], messages=conv("x"), **up)
    )
    await wait_stats(emulator, "in_flight", 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_stats(emulator, "disconnected", 2, timeout=1.0)


# --- all responses ----------------------------------------------------------------------------------


async def test_all_responses_in_models_order(client: AsyncClient, up: dict[str, Any]) -> None:
    models = ["openai/a-delay-150", "openai/b-status-500", "openai/c-delay-10"]
    t0 = time.perf_counter()
    ok = await client.batch_completion_models_all_responses(models=models, messages=conv("hi"), **up)
    assert time.perf_counter() - t0 < 0.4  # in parallel
    assert [r.model for r in ok] == ["a-delay-150", "c-delay-10"]
    slots = await client.batch_completion_models_all_responses(
        models=models, messages=conv("hi"), return_exceptions=True, **up
    )
    assert slots[0].model == "a-delay-150" and isinstance(slots[1], InternalServerError) and slots[2].model


async def test_all_responses_all_failed(client: AsyncClient, up: dict[str, Any]) -> None:
    with pytest.raises(AllModelsFailedError) as info:
        await client.batch_completion_models_all_responses(
            models=["openai/a-status-429", "openai/b-status-401"], messages=conv("hi"), **up
        )
    assert [type(e) for e in info.value.exceptions] == [RateLimitError, AuthenticationError]


@pytest.mark.real_llm
async def test_race_loser_is_cancelled_by_the_real_model(
    client: AsyncClient, up: dict[str, Any], real_llm: Any
) -> None:
    since = real_llm.log_size()
    slow = {"model": f"openai/{real_llm.model}", "api_base": real_llm.openai_base, "api_key": "none", "max_tokens": 400}
    response = await client.batch_completion_models(
        models=[slow, {"model": "openai/fast-delay-50", **up}],
        messages=conv("Write a very long story about a dragon and a knight."),
        temperature=0.8,
    )
    assert response.model == "fast-delay-50"
    assert response.hidden_params["race"]["cancelled"] == [slow["model"]]
    log = await real_llm.wait_for_log("cancel task", since=since, timeout=10)
    assert "cancel task" in log, f"the losing generation was not cancelled upstream:\n{log[-2000:]}"
